# -*- coding: utf-8 -*-
# Copyright: pgops.rewind developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""WAL pages: which segment file holds an LSN, reading it in chunks, and validating
every page header (magic of the major, page address, segment size, system
identifier, timeline) before a record on the page is trusted.

`WalPages` is the lower half of the WAL reader (wal/reader.py assembles and checks
records on top of it). It holds at most one chunk of one segment, so memory does not
grow with the amount of WAL.
"""

from __future__ import annotations

import os
import struct
from typing import Optional

from ..errors import MissingWalError, WalError
from ..pg import crc32c as crc_module
from ..pg.lsn import LONG_PAGE_HEADER, SHORT_PAGE_HEADER, XLOG_BLCKSZ, format_lsn, maxalign, \
    segment_name
from ..pg.timeline import timeline_of_segment
from ..pg.versions import MajorFormat

XLP_FIRST_IS_CONTRECORD = 0x0001
XLP_LONG_HEADER = 0x0002
XLP_BKP_REMOVABLE = 0x0004
XLP_FIRST_IS_OVERWRITE_CONTRECORD = 0x0008
XLP_ALL_FLAGS = 0x000F

_PAGE_HEADER = struct.Struct("<HHIQI")      # magic, info, tli, pageaddr, rem_len
_LONG_TAIL = struct.Struct("<QII")          # sysid, seg_size, xlog_blcksz (at offset 24)

CHUNK_SIZE = 1 << 20


class EndOfWal(Exception):
    """Internal: the WAL cannot be followed past this point (the reason says why)."""

    def __init__(self, reason, lsn, missing_segment=None):
        super().__init__(reason)
        self.reason = reason
        self.lsn = lsn
        self.missing_segment = missing_segment


class WalPages:
    """Validated pages from the segments of one timeline history."""

    def __init__(self, segments, fmt: MajorFormat, seg_size: int, history: list,
                 system_identifier: Optional[int] = None):
        self.segments = segments
        self.fmt = fmt
        self.seg_size = seg_size
        self.history = history
        self.system_identifier = system_identifier
        self.on_chunk = None             # called with the LSN of each chunk read (progress)
        self.address_chunks = False      # keep each chunk's address (records checksummed by it)
        self._segments_read = set()      # (tli, segno) of every page read
        self._file = None
        self._file_key = None
        self._chunk = b""
        self._chunk_start = -1
        self._chunk_address = 0
        self._checked_pages = set()
        self._latest_page_tli = 0        # of a sequential reading: timelines never go back

    def segments_read(self) -> set:
        """Names of the segment files this reader has read pages from."""
        return {segment_name(tli, segno, self.seg_size) for tli, segno in self._segments_read}

    def forget_segments_read(self) -> None:
        self._segments_read.clear()

    def close(self):
        if self._file is not None:
            self._file.close()
        self._file = None
        self._file_key = None

    def _segment_for(self, page_lsn):
        segno = page_lsn // self.seg_size
        seg_start = segno * self.seg_size
        tli = timeline_of_segment(self.history, seg_start, seg_start + self.seg_size)
        return tli, segno

    def open_segment(self, segno: int):
        """The file of segment `segno` of this history (None: missing), counted as read."""
        tli, segno = self._segment_for(segno * self.seg_size)
        handle = self.segments.open(tli, segno)
        if handle is not None:
            self._segments_read.add((tli, segno))
        return handle

    def prefetch_segment(self, segno: int) -> None:
        """Ask the kernel to start reading segment `segno` (when it is in pg_wal), so a
        backward search finds it in memory; not counted as read."""
        directory = getattr(self.segments, "path", None)       # a local pg_wal
        if segno < 0 or directory is None or not hasattr(os, "posix_fadvise"):
            return
        tli, segno = self._segment_for(segno * self.seg_size)
        path = os.path.join(directory, segment_name(tli, segno, self.seg_size))
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return
        try:
            os.posix_fadvise(fd, 0, self.seg_size, os.POSIX_FADV_WILLNEED)
        except OSError:
            pass
        finally:
            os.close(fd)

    def _load_chunk(self, page_lsn):
        tli, segno = self._segment_for(page_lsn)
        if self._file_key != (tli, segno):
            self.close()
            handle = self.segments.open(tli, segno)
            if handle is None:
                name = segment_name(tli, segno, self.seg_size)
                raise EndOfWal("WAL segment %s is missing" % name, page_lsn, name)
            self._file, self._file_key = handle, (tli, segno)
        if self.on_chunk is not None:
            self.on_chunk(page_lsn)
        seg_offset = page_lsn % self.seg_size
        chunk_offset = seg_offset - seg_offset % CHUNK_SIZE
        self._file.seek(chunk_offset)
        self._chunk = self._file.read(min(CHUNK_SIZE, self.seg_size - chunk_offset))
        if self.address_chunks:
            self._chunk_address = crc_module.bytes_address(self._chunk)
        self._chunk_start = page_lsn - (seg_offset - chunk_offset)
        self._checked_pages = set()

    def _page(self, page_lsn, sequential):
        """The validated page at `page_lsn`: (chunk, offset in chunk, info, rem_len, header size)."""
        offset = page_lsn - self._chunk_start
        if offset < 0 or offset + XLOG_BLCKSZ > len(self._chunk):
            self._load_chunk(page_lsn)
            offset = page_lsn - self._chunk_start
        chunk = self._chunk
        self._segments_read.add(self._file_key)
        magic, info, tli, pageaddr, rem_len = _PAGE_HEADER.unpack_from(chunk, offset)
        if page_lsn not in self._checked_pages:
            self._check_page(chunk, offset, page_lsn, magic, info, tli, pageaddr, sequential)
            self._checked_pages.add(page_lsn)
        hdr = LONG_PAGE_HEADER if info & XLP_LONG_HEADER else SHORT_PAGE_HEADER
        return chunk, offset, info, rem_len, hdr

    def _check_page(self, chunk, offset, page_lsn, magic, info, tli, pageaddr, sequential):
        seg = segment_name(self._file_key[0], self._file_key[1], self.seg_size)
        where = "in WAL segment %s, LSN %s, offset %d" % (
            seg, format_lsn(page_lsn), page_lsn % self.seg_size)
        if magic == 0 and pageaddr == 0:
            raise EndOfWal("zero-filled page %s" % where, page_lsn)
        if magic != self.fmt.wal_page_magic:
            raise EndOfWal("invalid magic number %04X %s (PostgreSQL %d writes %04X)"
                           % (magic, where, self.fmt.major, self.fmt.wal_page_magic), page_lsn)
        if info & ~XLP_ALL_FLAGS:
            raise EndOfWal("invalid info bits %04X %s" % (info, where), page_lsn)
        if page_lsn % self.seg_size == 0:
            if not info & XLP_LONG_HEADER:
                raise EndOfWal("missing long page header %s" % where, page_lsn)
            sysid, seg_size, blcksz = _LONG_TAIL.unpack_from(chunk, offset + 24)
            if seg_size != self.seg_size or blcksz != XLOG_BLCKSZ:
                raise EndOfWal("page header %s says segment size %d, block size %d"
                               % (where, seg_size, blcksz), page_lsn)
            if self.system_identifier is not None and sysid != self.system_identifier:
                raise EndOfWal("WAL segment %s belongs to database system %d, not %d"
                               % (seg, sysid, self.system_identifier), page_lsn)
        if pageaddr != page_lsn:
            raise EndOfWal("unexpected page address %s %s (an old, recycled segment)"
                           % (format_lsn(pageaddr), where), page_lsn)
        if not self._tli_allowed(tli, page_lsn):
            raise EndOfWal("page of timeline %d %s, which is not in this history at that "
                           "position" % (tli, where), page_lsn)
        if sequential:
            if tli < self._latest_page_tli:
                raise EndOfWal("out-of-sequence timeline ID %d (after %d) %s"
                               % (tli, self._latest_page_tli, where), page_lsn)
            self._latest_page_tli = tli

    def _tli_allowed(self, tli, page_lsn):
        for entry in self.history:
            if entry.tli == tli:
                # A page is initialised by the timeline that first writes on it, so it
                # may start before the timeline begins but never after it ended.
                return entry.end is None or page_lsn < entry.end
        return False

    def _record_page(self, lsn, sequential):
        """The page a record at `lsn` starts on, once it is clear one can start there:
        (chunk, offset of the page in it, offset in the page, page LSN)."""
        page_off = lsn % XLOG_BLCKSZ
        page_lsn = lsn - page_off
        chunk, base, info, rem_len, hdr = self._page(page_lsn, sequential)
        if page_off < hdr:
            raise EndOfWal("record position %s lies inside a page header" % format_lsn(lsn), lsn)
        if page_off == hdr and info & XLP_FIRST_IS_CONTRECORD and rem_len:
            raise EndOfWal("a continuation record starts at %s, not a record" % format_lsn(lsn),
                           lsn)
        return chunk, base, page_off, page_lsn

    def _next_record_position(self, lsn):
        """A record never starts in a page header: the position after it, at a page start."""
        if lsn % XLOG_BLCKSZ == 0:
            return lsn + (LONG_PAGE_HEADER if lsn % self.seg_size == 0 else SHORT_PAGE_HEADER)
        return lsn

    def first_record_from(self, lsn: int) -> int:
        """The first record that starts at or after the page holding `lsn`: a page may
        begin with the tail of a record from earlier pages (xlp_rem_len bytes)."""
        page_lsn = lsn - lsn % XLOG_BLCKSZ
        try:
            while True:
                _chunk, _base, info, rem_len, hdr = self._page(page_lsn, sequential=False)
                if not info & XLP_FIRST_IS_CONTRECORD or rem_len == 0:
                    return page_lsn + hdr
                position = page_lsn + hdr + maxalign(rem_len)
                if position < page_lsn + XLOG_BLCKSZ:
                    return position
                page_lsn += XLOG_BLCKSZ
        except EndOfWal as exc:
            raise self._as_error(exc, "could not find a record after %s" % format_lsn(lsn))

    def _as_error(self, exc, context):
        if exc.missing_segment:
            return MissingWalError("%s: WAL segment %s is missing from %s."
                                   % (context, exc.missing_segment,
                                      getattr(self.segments, "path", "the WAL directory")),
                                   segment=exc.missing_segment, lsn=format_lsn(exc.lsn))
        return WalError("%s: %s." % (context, exc.reason), lsn=format_lsn(exc.lsn))
