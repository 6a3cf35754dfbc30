# -*- coding: utf-8 -*-
# Copyright: pgops.rewind developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Starting the kernel's write-back of what the copy writes, as it writes it.

Everything the rewind wrote is fsynced before the new pg_control is installed
(target/durability.py). Left alone, the kernel keeps gigabytes dirty (vm.dirty_ratio is
a share of RAM) and those fsyncs then write them all after the copy: at a busy
failover a second of the rewind spent waiting for the disk alone. As PostgreSQL does
with checkpoint_flush_after and backend_flush_after, the bytes written to a file are
handed to the disk every few megabytes and when the copy leaves the file
(sync_file_range with SYNC_FILE_RANGE_WRITE: start write-back, do not wait), so the disk
writes while the copy still fetches. Nothing is made durable here; the fsyncs stay.
Without sync_file_range (not Linux, or no libc to load) nothing is done.
"""

from __future__ import annotations

import sys

from . import durability

SYNC_FILE_RANGE_WRITE = 2
FLUSH_AFTER = 8 << 20          # bytes written to one file between two hints


def _sync_file_range():
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes
        call = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (ImportError, OSError, AttributeError):
        return None
    call.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)
    call.restype = ctypes.c_int
    return call


class WriteBack:
    """Write-back hints for the file being written (one at a time, as TargetDirectory
    writes)."""

    def __init__(self, enabled: bool = True):
        self._call = _sync_file_range() if enabled else None
        self.pending = 0           # bytes written to the current file since its last hint
        self.hints = 0

    @property
    def available(self) -> bool:
        return self._call is not None

    def written(self, handle: int, nbytes: int, rel: str) -> None:
        self.pending += nbytes
        if self.pending >= FLUSH_AFTER:
            self.start(handle, rel)

    def start(self, handle: int, rel: str) -> None:
        """Start write-back of the file's dirty pages (before it is closed, and every
        FLUSH_AFTER bytes). Failures are ignored: the fsync later is what counts."""
        if self.pending and self._call is not None and self._call(
                handle, 0, 0, SYNC_FILE_RANGE_WRITE) == 0:
            self.hints += 1
            durability.record("writeback", rel)
        self.pending = 0
