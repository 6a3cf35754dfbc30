# -*- coding: utf-8 -*-
# Copyright: pgops.rewind developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Files a run keeps in the temporary directory, safely on a shared host.

`ScratchDirectory`: a private directory (0700) for WAL restored from the archive. It is
removed when the run ends; a run that was killed leaves it behind, so every run first
removes the leftovers of the same user's dead runs (`sweep_dead`: a live run holds a
lock in its own).

`write_private_file`: how the progress file is written: a new file created exclusively
(never through a link, mode 0600), then renamed over the path; a rename replaces a
symbolic link planted there instead of writing through it. `owned_path`: the path to
use, or a private directory's when someone else holds the usual one.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import shutil
import stat
import tempfile

WAL_PREFIX = "pgops-rewind-wal-"
_STAGING = ".pgops-rewind-new-"
_LOCK = ".in-use"


class ScratchDirectory:
    def __init__(self, prefix: str = WAL_PREFIX):
        root = tempfile.gettempdir()
        # Locked before it gets its findable name, so no sweeper can take it for dead.
        staging = tempfile.mkdtemp(prefix=_STAGING, dir=root)
        self._lock = os.open(os.path.join(staging, _LOCK),
                             os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        fcntl.flock(self._lock, fcntl.LOCK_EX)
        self.path = os.path.join(root, prefix + secrets.token_hex(8))
        os.rename(staging, self.path)

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None


def sweep_dead(root: str = None, prefix: str = WAL_PREFIX) -> list:
    """Remove this user's scratch directories whose run is gone (their lock is free).
    Every run calls it first. Returns the paths removed."""
    root = root or tempfile.gettempdir()
    removed = []
    uid = os.geteuid()
    for name in os.listdir(root):
        if not name.startswith(prefix):
            continue
        path = os.path.join(root, name)
        try:
            info = os.lstat(path)
            if not stat.S_ISDIR(info.st_mode) or info.st_uid != uid:
                continue
            lock = os.open(os.path.join(path, _LOCK), os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            continue                    # a live run's
        finally:
            os.close(lock)
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def owned_path(path: str) -> tuple:
    """(path to write, None) when `path` is free or our own regular file; else a path of
    the same name in this user's private directory, and the reason (someone planted a
    link or another user's file there)."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return path, None
    if stat.S_ISREG(info.st_mode) and info.st_uid == os.geteuid():
        return path, None
    what = "a symbolic link" if stat.S_ISLNK(info.st_mode) else \
        "owned by uid %d" % info.st_uid if info.st_uid != os.geteuid() else "not a regular file"
    private = os.path.join(tempfile.gettempdir(), "pgops_rewind-%d" % os.geteuid())
    try:
        os.mkdir(private, 0o700)
    except FileExistsError:
        pass
    info = os.lstat(private)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o077:
        raise PermissionError("%s is not a private directory of this user" % private)
    return os.path.join(private, os.path.basename(path)), "%s is %s" % (path, what)


def write_private_file(path: str, data: bytes) -> None:
    """Replace `path` with `data`, atomically, never following a link, mode 0600."""
    directory, name = os.path.split(os.path.abspath(path))
    handle, temp = tempfile.mkstemp(prefix=name + ".", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temp, path)
    except BaseException:
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise
