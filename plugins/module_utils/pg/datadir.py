# -*- coding: utf-8 -*-
# Copyright: pgops.rewind developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the paths of a PostgreSQL data directory are, as a rewind sees them.

The vocabulary every part shares: the block size, the kinds of entries in a listing,
which paths are relation files, which are never copied, which belong to the standby
configuration or to the operator, and the engine's own working directory. The
decisions built on it live elsewhere (plan/filemap.py plans, target/directory.py writes).
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
import stat
from typing import NamedTuple, Optional

from ..errors import SourceError
from .blockmap import DEFAULTTABLESPACE_OID, GLOBALTABLESPACE_OID, RelFileSegment

# Relation pages and WAL block references: every supported build uses 8 kB (pg_control's
# blcksz is compared between source and target before anything else).
BLCKSZ = 8192

# Kinds of entries in a listing.
FILE = "file"
DIRECTORY = "dir"
SYMLINK = "link"


class FileEntry(NamedTuple):
    kind: str                   # FILE, DIRECTORY or SYMLINK
    size: int = 0
    link_target: Optional[str] = None


# The engine's own working directory inside the target (never listed, never touched).
STATE_DIR = "pgops_rewind"

# Not copied from the source; removed from the target when there (server start clears them).
_EXCLUDED_DIR_CONTENTS = ("pg_stat_tmp", "pg_replslot", "pg_dynshmem", "pg_notify",
                          "pg_serial", "pg_snapshots", "pg_subtrans")
_EXCLUDED_FILES = ("postgresql.auto.conf.tmp", "current_logfiles.tmp", "backup_label",
                   "tablespace_map", "postmaster.pid", "postmaster.opts", "backup_manifest")
# The standby configuration belongs to the target: the rewind never copies the
# source's nor removes the target's (write_recovery_conf manages them).
STANDBY_FILES = ("standby.signal", "recovery.signal", "recovery.conf", "recovery.done")
# The operator's configuration: kept as the target has it unless told otherwise.
DEFAULT_KEEP_FILES = ("postgresql.conf", "pg_hba.conf", "pg_ident.conf", "postgresql.auto.conf")

# A main-fork relation file: global/<rel>, base/<db>/<rel>, or in a tablespace
# pg_tblspc/<spc>/<version dir>/<db>/<rel>; each with an optional .<segment>.
_RELATION = re.compile(
    r"^(?:global/(?P<g>[1-9][0-9]*)"
    r"|base/(?P<db>[1-9][0-9]*)/(?P<r>[1-9][0-9]*)"
    r"|pg_tblspc/(?P<spc>[1-9][0-9]*)/(?P<ver>PG_[0-9]+_[0-9]+)/(?P<tdb>[1-9][0-9]*)/"
    r"(?P<tr>[1-9][0-9]*))(?:\.(?P<seg>[1-9][0-9]*))?$")
_TABLESPACE_LINK = re.compile(r"^pg_tblspc/[1-9][0-9]*$")


def relation_segment(path: str, tablespace_dir: str) -> Optional[RelFileSegment]:
    """The main-fork relation segment a path names, or None (other forks, other files,
    another major's tablespace directory)."""
    match = _RELATION.match(path)
    if not match:
        return None
    seg = int(match.group("seg") or 0)
    if match.group("g"):
        return RelFileSegment(GLOBALTABLESPACE_OID, 0, int(match.group("g")), seg)
    if match.group("db"):
        return RelFileSegment(DEFAULTTABLESPACE_OID, int(match.group("db")),
                              int(match.group("r")), seg)
    if match.group("ver") != tablespace_dir:
        return None
    return RelFileSegment(int(match.group("spc")), int(match.group("tdb")),
                          int(match.group("tr")), seg)


def looks_like_relation(path: str) -> bool:
    """A main-fork relation file path, whatever the tablespace directory's major."""
    return _RELATION.match(path) is not None


def is_tablespace_link(path: str) -> bool:
    return _TABLESPACE_LINK.match(path) is not None


def is_excluded(path: str) -> bool:
    """Paths a rewind never copies from the source (and removes from the target)."""
    if "/pgsql_tmp" in path or path.startswith("pgsql_tmp"):
        return True
    top, _unused, rest = path.partition("/")
    if rest and top in _EXCLUDED_DIR_CONTENTS:
        return True
    name = posixpath.basename(path)
    return name in _EXCLUDED_FILES or name.startswith("pg_internal.init")


def is_state_dir(path: str) -> bool:
    """The engine's working directory or anything in it."""
    return path == STATE_DIR or path.startswith(STATE_DIR + "/")


def list_datadir(root: str) -> dict:
    """Every path under a local data directory: {relative path: FileEntry}.

    Symlinks are reported as such; only tablespace links (pg_tblspc/<oid>) and a
    symlinked pg_wal are followed. Files that vanish while listed are skipped.
    """
    files = {}
    pending = [""]
    while pending:
        rel_dir = pending.pop()
        try:
            entries = list(os.scandir(os.path.join(root, rel_dir) if rel_dir else root))
        except FileNotFoundError:
            continue
        for entry in entries:
            path = rel_dir + entry.name if not rel_dir else rel_dir + "/" + entry.name
            if path == STATE_DIR:
                continue
            try:
                info = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            if stat.S_ISLNK(info.st_mode):
                follow = path == "pg_wal" or (rel_dir == "pg_tblspc")
                if path == "pg_wal":
                    files[path] = FileEntry(DIRECTORY, 0)
                else:
                    files[path] = FileEntry(SYMLINK, 0, os.readlink(entry.path))
                if follow and os.path.isdir(entry.path):
                    pending.append(path)
            elif stat.S_ISDIR(info.st_mode):
                files[path] = FileEntry(DIRECTORY, 0)
                pending.append(path)
            elif stat.S_ISREG(info.st_mode):
                files[path] = FileEntry(FILE, info.st_size)
    return files


class DigestUnavailable(Exception):
    """A side cannot checksum files (a refused or missing digest function): the
    identical-file check is skipped, never the rewind."""


def file_digest(path: str):
    """SHA-256 (hex) of a local file, as the source computes it with sha256(bytea), or None
    when the file is gone. Raises DigestUnavailable when this Python cannot hash."""
    try:
        digest = hashlib.sha256()
    except Exception as exc:    # a crippled or policy-restricted hashlib
        raise DigestUnavailable("this host cannot compute SHA-256: %s" % exc) from None
    try:
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()


def check_safe_path(path: str) -> None:
    """A path from a listing must stay inside the data directory."""
    if (not path or path.startswith("/") or "\0" in path or "\\" in path
            or any(part in ("", ".", "..") for part in path.split("/"))):
        raise SourceError("the source listed an unsafe path %r; refusing to write it." % path,
                          hint="The source is not a sound PostgreSQL data directory.",
                          code="unsafe_path")
