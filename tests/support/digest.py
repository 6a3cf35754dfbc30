"""A data directory's exact state: every path, its type, mode, owner and bytes."""

from __future__ import annotations

import hashlib
import os
import stat


def datadir_digest(root) -> dict:
    """{relative path: (type, mode, uid, size, sha256 or link target)} for everything
    under `root`, following tablespace links and a symlinked pg_wal."""
    state = {}
    pending = [""]
    root = str(root)
    while pending:
        rel_dir = pending.pop()
        directory = os.path.join(root, rel_dir) if rel_dir else root
        for name in sorted(os.listdir(directory)):
            rel = os.path.join(rel_dir, name) if rel_dir else name
            path = os.path.join(root, rel)
            info = os.lstat(path)
            mode = stat.S_IMODE(info.st_mode)
            if stat.S_ISLNK(info.st_mode):
                state[rel] = ("link", mode, info.st_uid, 0, os.readlink(path))
                if rel_dir == "pg_tblspc" or rel == "pg_wal":
                    pending.append(rel)
            elif stat.S_ISDIR(info.st_mode):
                state[rel] = ("dir", mode, info.st_uid, 0, "")
                pending.append(rel)
            else:
                with open(path, "rb") as handle:
                    digest = hashlib.sha256(handle.read()).hexdigest()
                state[rel] = ("file", mode, info.st_uid, info.st_size, digest)
    return state


def differences(before: dict, after: dict) -> list:
    return sorted(path for path in set(before) | set(after) if before.get(path) != after.get(path))
