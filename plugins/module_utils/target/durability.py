# -*- coding: utf-8 -*-
# Copyright: pgops.rewind developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Making the target's changes durable before the new pg_control is installed.

A run that starts afresh fsyncs exactly what it changed (TargetDirectory keeps the
set). A run that resumes an interrupted one cannot know what that run changed: its
writes may still sit in the page cache, and the files it completed are skipped now
as identical. So a resumed run fsyncs the whole data directory, every file and
directory (through tablespace links and a symlinked pg_wal), as PostgreSQL's own
pg_rewind and `initdb --sync-only` do; docs/design.md gives the argument.

For the tests, PGOPS_REWIND_SYNC_RECORD=PATH appends a line to PATH for every change
to the target, every fsync and every rename, in order ("change write base/1/1259",
"fsync /abs/path", "rename /abs/path").
"""

from __future__ import annotations

import os
import stat

RECORD_ENV = "PGOPS_REWIND_SYNC_RECORD"


def record(event: str, what: str) -> None:
    """Note an event for a test's recorder; inert unless PGOPS_REWIND_SYNC_RECORD is set."""
    log = os.environ.get(RECORD_ENV)
    if log:
        with open(log, "a") as handle:
            handle.write("%s %s\n" % (event, what))


def fsync_fd(handle: int, path: str) -> None:
    os.fsync(handle)
    record("fsync", path)


def fsync_path(path: str, directory: bool = False) -> None:
    """fsync a file or directory by name. Gone, or not ours to open (such a file was not
    written by us, as PostgreSQL's fsync_fname reasons too): nothing to do."""
    try:
        handle = os.open(path, os.O_RDONLY | (0 if directory else os.O_NOFOLLOW))
    except (FileNotFoundError, PermissionError):
        return
    try:
        fsync_fd(handle, path)
    finally:
        os.close(handle)


def sync_tree(root: str) -> int:
    """fsync every regular file and directory under `root` (itself included), following
    only the links a data directory may have (pg_wal, pg_tblspc/<oid>), whose target
    directories and their parents are synced too. Returns the number of fsyncs."""
    count = 0
    pending = [(root, "")]
    while pending:
        directory, rel_dir = pending.pop()
        try:
            entries = list(os.scandir(directory))
        except FileNotFoundError:
            continue
        for entry in entries:
            rel = rel_dir + "/" + entry.name if rel_dir else entry.name
            try:
                info = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            if stat.S_ISREG(info.st_mode):
                fsync_path(entry.path)
                count += 1
            elif stat.S_ISDIR(info.st_mode):
                pending.append((entry.path, rel))
            elif stat.S_ISLNK(info.st_mode) and (rel == "pg_wal" or rel_dir == "pg_tblspc"):
                real = os.path.realpath(entry.path)
                if os.path.isdir(real):
                    fsync_path(os.path.dirname(real), directory=True)
                    count += 1
                    pending.append((real, rel))
        fsync_path(directory, directory=True)
        count += 1
    return count
