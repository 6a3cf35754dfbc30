# -*- coding: utf-8 -*-
# Copyright: pgops.rewind developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where WAL segment files come from: a pg_wal directory, and the archive for the ones
it lacks (restore_command)."""

from __future__ import annotations

import os

from ..errors import WalError
from ..pg.lsn import segment_name


class SegmentDirectory:
    """WAL segment files in a directory (a data directory's pg_wal), with an optional
    `restore` (commands.RestoreCommand) whose fetch(name) returns the path of a
    missing segment it got from the archive."""

    def __init__(self, path: str, seg_size: int, restore=None):
        self.path = path
        self.seg_size = seg_size
        self.restore = restore

    def open(self, tli: int, segno: int):
        name = segment_name(tli, segno, self.seg_size)
        path = os.path.join(self.path, name)
        if not os.path.exists(path) and self.restore is not None:
            path = self.restore.fetch(name) or path
        try:
            handle = open(path, "rb")
        except FileNotFoundError:
            return None
        size = os.fstat(handle.fileno()).st_size
        if size != self.seg_size:
            handle.close()
            raise WalError("WAL segment %s has %d bytes; segments of this cluster have %d."
                           % (name, size, self.seg_size), code="wal_segment_size",
                           segment=name)
        return handle
