# -*- coding: utf-8 -*-
# Copyright: pgops.rewind developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The last common checkpoint, found by searching the WAL's bytes instead of walking it.

Walking back through xl_prev from the fork costs a Python step and a CRC per record; in
a real failover minutes of common WAL lie between the last checkpoint and the fork,
millions of records (issue 20: 6 of 11 seconds). A checkpoint record has a fixed shape:
resource manager XLOG, info CHECKPOINT_SHUTDOWN or _ONLINE, and the length
SizeOfXLogRecord + 2 + sizeof(CheckPoint) of its major. So each segment, from the fork's
back, is read in large sequential windows (the segment before is prefetched meanwhile)
and searched for that shape by a regular expression whose exact length leads, at memory
speed; a record header split by a page header is matched in the seams between pages.

A match is only a candidate: bytes inside another record's data can look the same, a
valid CRC included. It is proved to be a record by the page it lies on: the page header
tells where the first record on the page starts (after the tail of one continued from
earlier pages), and hopping from there by each record's length lands on the candidate
exactly, or it is not a record. Then the reader checks it as it checks every record
(page header, prev-link, CRC). The newest proved checkpoint before the fork is the one
the walk back would reach first. The same pass finds the records that may change
full-page writes (FPW_CHANGE, PARAMETER_CHANGE, of their major's lengths). When something is
not as expected (a missing segment, a record that fails its checks) the search gives up
and the walk back decides, with its own errors.
"""

from __future__ import annotations

import re
import struct
from typing import NamedTuple, Optional

from ..errors import WalError
from ..pg.lsn import LONG_PAGE_HEADER, SHORT_PAGE_HEADER, XLOG_BLCKSZ, maxalign
from ..pg.versions import MajorFormat
from .pages import XLP_FIRST_IS_CONTRECORD, XLP_FIRST_IS_OVERWRITE_CONTRECORD
from .record import RM_XLOG_ID, SIZE_OF_RECORD_HEADER, XLOG_SWITCH, changes_full_page_writes, \
    is_checkpoint

WINDOW_PAGES = 1024            # 8 MB read and searched at a time
SIZE_OF_DATA_SHORT = 2         # XLR_BLOCK_ID_DATA_SHORT and its one-byte length

_PAGE_HEADER = struct.Struct("<HHIQI")      # magic, info, tli, pageaddr, rem_len
_U32 = struct.Struct("<I")
# XLOG_SWITCH: a bare header (24 bytes), info 0x40; the rest of its segment is padding.
_SWITCH_SHAPE = re.compile(b"\x18\x00\x00\x00.{12}[\x40-\x4f]\x00", re.S)


class CheckpointFound(NamedTuple):
    lsn: int                          # the checkpoint record
    fpw_changed_at: Optional[int]     # the first FPW_CHANGE/PARAMETER_CHANGE after it
    wal_bytes_read: int               # what the search read
    candidates_rejected: int          # matches of a shape that were not records


def _xlog_shape(data_size: int, info: bytes):
    """The header of an XLOG record with `data_size` bytes of main data and an info byte
    in the class `info`. Its exact length leads, so the search runs at memory speed (a
    leading length class, such as any length below 256, makes it twenty times slower)."""
    length = _U32.pack(SIZE_OF_RECORD_HEADER + SIZE_OF_DATA_SHORT + data_size)
    return re.compile(re.escape(length) + b".{12}" + info + b"\x00", re.S)


def checkpoint_shape(fmt: MajorFormat):
    """CHECKPOINT_SHUTDOWN (0x00) or CHECKPOINT_ONLINE (0x10): sizeof(CheckPoint)."""
    return _xlog_shape(fmt.checkpoint_size, b"[\x00-\x1f]")


def fpw_shapes(fmt: MajorFormat) -> tuple:
    """XLOG_FPW_CHANGE (0x80: one bool) and XLOG_PARAMETER_CHANGE (0x60:
    xl_parameter_change, whose size is the major's)."""
    return (_xlog_shape(1, b"[\x80-\x8f]"),
            _xlog_shape(fmt.parameter_change_size, b"[\x60-\x6f]"))


def search_last_checkpoint(reader, fork: int, fmt: MajorFormat) -> Optional[CheckpointFound]:
    """The newest checkpoint record before `fork` (a record position), or None when the
    search cannot tell (the walk back decides then)."""
    search = _Search(reader, fork, fmt)
    segno = fork // reader.seg_size
    try:
        while segno > 0:
            found = search.segment(segno)
            if found is not None or search.gave_up:
                return found
            segno -= 1
    except WalError:
        return None
    return None


class _Search:
    def __init__(self, reader, fork, fmt):
        self.reader, self.fork, self.fmt = reader, fork, fmt
        self.checkpoint = checkpoint_shape(fmt)
        self.fpw_shapes = fpw_shapes(fmt)
        self.fpw_changes = []          # proved, newer than any window searched later
        self.invalid = []              # pages of this segment that are not WAL
        self.switches = []             # proved XLOG_SWITCH records of this segment
        self.bytes_read = 0
        self.rejected = 0
        self.gave_up = False

    def segment(self, segno) -> Optional[CheckpointFound]:
        seg_size = self.reader.seg_size
        seg_start = segno * seg_size
        handle = self.reader.open_segment(segno)
        if handle is None:
            self.gave_up = True
            return None
        self.reader.prefetch_segment(segno - 1)      # read while this one is searched
        self.invalid, self.switches = [], []
        try:
            last_page = min(seg_start + seg_size, self.fork - self.fork % XLOG_BLCKSZ
                            + XLOG_BLCKSZ)
            # a header split at the segment's end goes on after the next one's page header
            # (not in the fork's segment: no record before the fork reaches past it)
            next_head = self._next_head(segno + 1) if self.fork >= seg_start + seg_size \
                else b""
            window_end = last_page
            while window_end > seg_start:
                window_start = max(seg_start, window_end - WINDOW_PAGES * XLOG_BLCKSZ)
                found = self._window(handle, seg_start, window_start, window_end, last_page,
                                     next_head if window_end == last_page else b"")
                if found is not None:
                    self._check_pages_after(found.lsn)
                    return found
                window_end = window_start
        finally:
            handle.close()
        self._check_pages_after(seg_start)
        return None

    def _next_head(self, segno) -> bytes:
        """The start of segment `segno` (searched before this one): its long page header
        and the bytes after it where a record header split at the boundary ends."""
        handle = self.reader.open_segment(segno)
        if handle is None:
            raise WalError("segment %d is missing" % segno)
        try:
            head = handle.read(LONG_PAGE_HEADER + SIZE_OF_RECORD_HEADER)
        finally:
            handle.close()
        self.bytes_read += len(head)
        return head

    def _check_pages_after(self, lsn):
        """Pages that are not WAL (zeroed, recycled, damaged) after `lsn` in this segment
        must be the padding after an XLOG_SWITCH; else the walk back, which reads every
        record, says what is wrong with them."""
        invalid = [page for page in self.invalid if page > lsn]
        if invalid and not any(lsn < switch < min(invalid) for switch in self.switches):
            raise WalError("page at %X is not valid WAL" % min(invalid))

    def _window(self, handle, seg_start, start, end, last_page, next_head):
        """Search the pages [start, end) (plus the head of the next page, where a header
        split at the window's end continues: `next_head` when that page is the next
        segment's first)."""
        read_end = min(end + XLOG_BLCKSZ, last_page)
        handle.seek(start - seg_start)
        data = handle.read(read_end - start)
        self.bytes_read += len(data)
        if len(data) != read_end - start:
            raise WalError("short read")
        data += next_head
        magic = self.fmt.wal_page_magic
        for page in range(0, end - start, XLOG_BLCKSZ):
            page_magic, _info, _tli, pageaddr, _rem = _PAGE_HEADER.unpack_from(data, page)
            if page_magic != magic or pageaddr != start + page:
                self.invalid.append(start + page)
        pages = _Pages(self, data, start, end, seg_start)
        if self.invalid:        # this window's or a later one's: a switch may explain them
            self.switches.extend(lsn for lsn in pages.matches(_SWITCH_SHAPE)
                                 if pages.is_record(lsn, _is_switch))
        fpw = [lsn for shape in self.fpw_shapes for lsn in pages.matches(shape)
               if pages.is_record(lsn, changes_full_page_writes)]
        for lsn in sorted(pages.matches(self.checkpoint), reverse=True):
            if pages.is_record(lsn, is_checkpoint):
                later = [at for at in fpw + self.fpw_changes if at > lsn]
                return CheckpointFound(lsn, min(later) if later else None, self.bytes_read,
                                       self.rejected)
        self.fpw_changes.extend(fpw)
        return None


def _starts(shape, buf, limit):
    """Offsets below `limit` where `shape` matches in `buf` (matches may overlap, so each
    search resumes one byte after the last match's start)."""
    pos = 0
    while True:
        match = shape.search(buf, pos, limit + SIZE_OF_RECORD_HEADER)
        if match is None or match.start() >= limit:
            return
        pos = match.start()
        yield pos
        pos += 1


def _is_switch(raw) -> bool:
    return raw.rmid == RM_XLOG_ID and raw.info & 0xF0 == XLOG_SWITCH


class _Pages:
    """The pages of one window, and which of their positions are records."""

    def __init__(self, search, data, start, end, seg_start):
        self.search, self.data, self.start, self.end = search, data, start, end
        self.seg_start = seg_start
        self._seam_bytes = None
        self.starts = {}                    # page LSN -> {record LSN: the record before}

    def matches(self, shape) -> set:
        """LSNs of the 8-aligned matches of `shape` that start in [start, end) of the
        window and before the fork. Headers that lie on one page are matched in the
        window's bytes as they are; the few split by a page header are matched in the
        seams: the last 24 bytes of each page joined to the first 24 after the next
        page's header."""
        limit = min(self.end, self.search.fork) - self.start
        found = {self.start + off for off in _starts(shape, self.data, limit)
                 if off % 8 == 0 and off % XLOG_BLCKSZ <= XLOG_BLCKSZ - SIZE_OF_RECORD_HEADER}
        for off in _starts(shape, self._seams(), len(self._seams())):
            seam, at = divmod(off, 2 * SIZE_OF_RECORD_HEADER)
            lsn = self.start + (seam + 1) * XLOG_BLCKSZ - SIZE_OF_RECORD_HEADER + at
            if at < SIZE_OF_RECORD_HEADER and at % 8 == 0 and lsn < self.start + limit:
                found.add(lsn)
        return found

    def _seams(self) -> bytes:
        if self._seam_bytes is None:
            data, size = self.data, SIZE_OF_RECORD_HEADER
            seg_end = self.seg_start + self.search.reader.seg_size - self.start
            # every page boundary whose next page was read (or the next segment's head)
            self._seam_bytes = b"".join(
                data[boundary - size:boundary]
                + data[boundary + header:boundary + header + size]
                for boundary in range(XLOG_BLCKSZ, len(data), XLOG_BLCKSZ)
                for header in (LONG_PAGE_HEADER if boundary == seg_end else SHORT_PAGE_HEADER,))
        return self._seam_bytes

    def is_record(self, lsn, kind) -> bool:
        page_lsn = lsn - lsn % XLOG_BLCKSZ
        starts = self.starts.get(page_lsn)
        if starts is None:
            starts = self.starts[page_lsn] = self._record_starts(page_lsn)
        if lsn not in starts:
            self.search.rejected += 1
            return False
        raw = self.search.reader.record_at(lsn)      # page, prev-link and CRC checks
        before = starts[lsn]
        if before is not None and raw.prev != before:
            raise WalError("record at a proved position with another prev-link")
        return kind(raw)

    def _record_starts(self, page_lsn) -> dict:
        """Where records start on the page: from the first one the page header tells of,
        by each record's length, until one leaves the page or an XLOG_SWITCH ends the
        segment's records."""
        base = page_lsn - self.start
        magic, info, _tli, pageaddr, rem_len = _PAGE_HEADER.unpack_from(self.data, base)
        if magic != self.search.fmt.wal_page_magic or pageaddr != page_lsn:
            return {}
        pos = LONG_PAGE_HEADER if page_lsn == self.seg_start else SHORT_PAGE_HEADER
        if info & XLP_FIRST_IS_CONTRECORD and rem_len \
                and not info & XLP_FIRST_IS_OVERWRITE_CONTRECORD:
            pos += maxalign(rem_len)
        starts, before = {}, None
        while pos <= XLOG_BLCKSZ - 4:
            tot_len = _U32.unpack_from(self.data, base + pos)[0]
            if tot_len < SIZE_OF_RECORD_HEADER:
                break
            starts[page_lsn + pos] = before
            before = page_lsn + pos
            if pos + 18 <= XLOG_BLCKSZ and self.data[base + pos + 17] == RM_XLOG_ID \
                    and self.data[base + pos + 16] & 0xF0 == XLOG_SWITCH:
                break
            pos += maxalign(tot_len)
        return starts
