# -*- coding: utf-8 -*-
# Copyright: pgops.rewind developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading WAL: segments, pages and whole records, validated.

`WalReader` turns the segment files of a timeline history into a stream of
complete, CRC-checked records (`RawRecord`: its LSN, its bytes, where it ends).
It follows records across pages and segments, skips a record abandoned at a
crash (XLP_FIRST_IS_OVERWRITE_CONTRECORD), jumps over the rest of a segment after
an XLOG_SWITCH, and checks every page header (magic of the major, page address,
segment size, system identifier, timeline). It reads a segment in chunks and
holds at most one chunk plus the record being assembled, so memory does not grow
with the amount of WAL. What the bytes of a record mean is wal/record.py's job.
"""

from __future__ import annotations

import struct
from typing import Iterator, Optional

from ..pg import crc32c as crc_module
from ..errors import MissingWalError, WalError

from ..pg.lsn import (LONG_PAGE_HEADER, SHORT_PAGE_HEADER, XLOG_BLCKSZ, format_lsn, maxalign,
                      segment_name)
from ..pg.timeline import timeline_of_segment
from ..pg.versions import MajorFormat

XLP_FIRST_IS_CONTRECORD = 0x0001
XLP_LONG_HEADER = 0x0002
XLP_BKP_REMOVABLE = 0x0004
XLP_FIRST_IS_OVERWRITE_CONTRECORD = 0x0008
XLP_ALL_FLAGS = 0x000F

RECORD_HEADER_SIZE = 24
MAX_RECORD_SIZE = 1020 * 1024 * 1024   # XLogRecordMaxSize: larger lengths are garbage
RM_XLOG_ID = 0
XLOG_SWITCH = 0x40

_PAGE_HEADER = struct.Struct("<HHIQI")      # magic, info, tli, pageaddr, rem_len
_LONG_TAIL = struct.Struct("<QII")          # sysid, seg_size, xlog_blcksz (at offset 24)
_RECORD_HEADER = struct.Struct("<IIQBBxxI")  # tot_len, xid, prev, info, rmid, crc
_U32 = struct.Struct("<I")

CHUNK_SIZE = 1 << 20


class RawRecord:
    """A complete, validated record: `data` holds all its bytes (header included)."""

    __slots__ = ("lsn", "end_lsn", "data", "tot_len", "xid", "prev", "info", "rmid")

    def __init__(self, lsn, end_lsn, data, tot_len, xid, prev, info, rmid):
        self.lsn = lsn
        self.end_lsn = end_lsn
        self.data = data
        self.tot_len = tot_len
        self.xid = xid
        self.prev = prev
        self.info = info
        self.rmid = rmid

    def __repr__(self):
        return "<RawRecord %s rmid %d info %02X len %d>" % (
            format_lsn(self.lsn), self.rmid, self.info, self.tot_len)


class EndOfWal(Exception):
    """Internal: the WAL cannot be followed past this point (the reason says why)."""

    def __init__(self, reason, lsn, missing_segment=None):
        super().__init__(reason)
        self.reason = reason
        self.lsn = lsn
        self.missing_segment = missing_segment


class WalReader:
    """Validated records from the segments of one timeline history."""

    def __init__(self, segments, fmt: MajorFormat, seg_size: int, history: list,
                 system_identifier: Optional[int] = None):
        self.segments = segments
        self.fmt = fmt
        self.seg_size = seg_size
        self.history = history
        self.system_identifier = system_identifier
        self._segments_read = set()      # (tli, segno) of every page read
        self._file = None
        self._file_key = None
        self._chunk = b""
        self._chunk_start = -1
        self._chunk_address = 0
        self._checked_pages = set()
        self._latest_page_tli = 0
        self._limit_reached = False
        self.end_of_wal = None           # after records(end=None): why reading stopped
        self.on_chunk = None             # called with the LSN of each chunk read (progress)
        self.record_crc = self.crc_in_place = self.crc_update = None
        self.use_crc(crc_module.IMPLEMENTATION)
        self.records_walked = 0          # after walk(): records visited,
        self.first_prev = None           # the prev-link of the first one,
        self.last_record = None          # and the LSN of the last one

    def use_crc(self, implementation: str) -> None:
        """Checksum records with this CRC-32C implementation (crc32c.load). The C
        package's function is also called in place on slices of the page, saving a
        Python call per record in the hot loop."""
        crc, self.record_crc = crc_module.load(implementation)
        self.crc_in_place = crc if implementation == "c" else None
        self.crc_update = crc_module.register_update(implementation)   # ext2fs: by address
        if self.crc_update is not None and self._chunk:
            self._chunk_address = crc_module.bytes_address(self._chunk)

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

    # --- pages -------------------------------------------------------------
    def _segment_for(self, page_lsn):
        segno = page_lsn // self.seg_size
        seg_start = segno * self.seg_size
        tli = timeline_of_segment(self.history, seg_start, seg_start + self.seg_size)
        return tli, segno

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
        if self.crc_update is not None:      # records are checksummed by address in it
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

    # --- records -----------------------------------------------------------
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

    def _read(self, lsn, expected_prev, sequential):
        """The record at `lsn`, or EndOfWal. Returns (RawRecord, next record's LSN)."""
        chunk, base, page_off, page_lsn = self._record_page(lsn, sequential)
        start = base + page_off
        avail = XLOG_BLCKSZ - page_off
        tot_len = _U32.unpack_from(chunk, start)[0]
        if tot_len < RECORD_HEADER_SIZE or tot_len > MAX_RECORD_SIZE:
            raise EndOfWal("invalid record length %d at %s" % (tot_len, format_lsn(lsn)), lsn)
        if tot_len <= avail:
            data = memoryview(chunk)[start:start + tot_len]
            crc_buf, crc_off = chunk, start
            end_lsn = lsn + maxalign(tot_len)
        else:
            if avail >= RECORD_HEADER_SIZE:     # fail early on garbage before gathering pages
                self._check_header(chunk, start, tot_len, lsn, expected_prev)
            parts = [bytes(chunk[start:start + avail])]
            got = avail
            next_page = page_lsn + XLOG_BLCKSZ
            while got < tot_len:
                chunk2, base2, info2, rem2, hdr2 = self._page(next_page, sequential)
                if info2 & XLP_FIRST_IS_OVERWRITE_CONTRECORD:
                    # The rest of this record was never written (crash); the server
                    # wrote new WAL over where it should have been. Skip the stump.
                    return None, next_page + hdr2
                if not info2 & XLP_FIRST_IS_CONTRECORD:
                    raise EndOfWal("no continuation of the record at %s on page %s"
                                   % (format_lsn(lsn), format_lsn(next_page)), next_page)
                if rem2 == 0 or rem2 != tot_len - got:
                    raise EndOfWal("invalid continuation length %d (expected %d) at %s"
                                   % (rem2, tot_len - got, format_lsn(next_page)), next_page)
                take = min(rem2, XLOG_BLCKSZ - hdr2)
                parts.append(bytes(chunk2[base2 + hdr2:base2 + hdr2 + take]))
                got += take
                end_lsn = next_page + hdr2 + maxalign(take)
                next_page += XLOG_BLCKSZ
            crc_buf, crc_off = b"".join(parts), 0
            data = memoryview(crc_buf)
        rec = self._check_header(data, 0, tot_len, lsn, expected_prev)
        if self.record_crc(crc_buf, crc_off, tot_len) != rec[5]:
            raise EndOfWal("incorrect record checksum at %s" % format_lsn(lsn), lsn)
        record = RawRecord(lsn, end_lsn, data, tot_len, rec[1], rec[2], rec[3], rec[4])
        if rec[4] == RM_XLOG_ID and rec[3] & 0xF0 == XLOG_SWITCH:
            # The rest of the segment is padding.
            end_lsn = end_lsn + (-end_lsn % self.seg_size)
            record.end_lsn = end_lsn
        return record, end_lsn

    def _check_header(self, buf, start, tot_len, lsn, expected_prev):
        header = _RECORD_HEADER.unpack_from(buf, start)
        rmid, prev = header[4], header[2]
        if rmid > self.fmt.max_builtin_rmid and not (self.fmt.custom_rmgrs and rmid >= 128):
            raise EndOfWal("invalid resource manager ID %d at %s" % (rmid, format_lsn(lsn)), lsn)
        if expected_prev is None:
            if prev >= lsn:
                raise EndOfWal("record with incorrect prev-link %s at %s"
                               % (format_lsn(prev), format_lsn(lsn)), lsn)
        elif prev != expected_prev:
            raise EndOfWal("record with incorrect prev-link %s at %s (expected %s)"
                           % (format_lsn(prev), format_lsn(lsn), format_lsn(expected_prev)), lsn)
        return header

    def _next_record_position(self, lsn):
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

    def record_at(self, lsn: int) -> RawRecord:
        """The record starting at `lsn` (random access: its prev-link must point back)."""
        try:
            record, _next = self._read(self._next_record_position(lsn), None, sequential=False)
        except EndOfWal as exc:
            raise self._as_error(exc, "could not read the WAL record at %s" % format_lsn(lsn))
        if record is None:
            raise WalError("the WAL record at %s was never completed (overwritten after a "
                           "crash)" % format_lsn(lsn), code="wal_corrupt")
        return record

    def records(self, start: int, end: Optional[int] = None) -> Iterator[RawRecord]:
        """Records from `start` on. With `end`, read until a record ends exactly there
        and fail on anything that stops the reading earlier; without, stop at the
        end of valid WAL and leave the reason in `self.end_of_wal`."""
        state = self._begin(start)
        batch = []

        def collect(lsn, end_lsn, buf, off, tot_len, xid, prev, info, rmid):
            data = memoryview(buf)[off:off + tot_len] if off or len(buf) != tot_len else buf
            batch.append(RawRecord(lsn, end_lsn, data, tot_len, xid, prev, info, rmid))

        more = True
        while more:
            stopped = None
            try:
                more = self._walk_page(state, end, ([collect] * 256, collect, 0))
            except EndOfWal as exc:
                stopped, more = exc, False
            yield from batch        # the page's records before whatever stopped the reading
            batch.clear()
            if stopped is not None:
                self._stopped(stopped, end)

    def walk(self, start: int, end: Optional[int], visit, limit: Optional[int] = None,
             whole=None, routes=None) -> None:
        """Call visit(lsn, end_lsn, buf, offset, tot_len, xid, prev, info, rmid) for each
        record, the record being buf[offset:offset + tot_len]; same end semantics as
        records(). With `limit`, records starting at or after it are not read (a part of
        a parallel scan). With whole=(callback, info_mask, rmids), a record with a bit
        of info_mask in its info or a resource manager in rmids goes to callback instead;
        routes={rmid: callback} sends the records of those resource managers to theirs.
        Counts in records_walked, first_prev and last_record. The hot loop of every WAL
        scan: a callback per record costs a fraction of a generator step."""
        state = self._begin(start)
        state.append(limit if limit is not None else 1 << 64)
        visitors = [visit] * 256            # by resource manager id (one byte)
        for rmid, callback in (routes or {}).items():
            visitors[rmid] = callback
        whole_visit, whole_info = visit, 0
        if whole is not None:
            whole_visit, whole_info, whole_rmids = whole
            for rmid in whole_rmids:
                visitors[rmid] = whole_visit
        routes = (visitors, whole_visit, whole_info)
        try:
            while self._walk_page(state, end, routes):
                pass
        except EndOfWal as exc:
            self._stopped(exc, end)
        finally:
            self.last_record = state[1]

    def _begin(self, start):
        self._latest_page_tli = 0
        self._limit_reached = False
        self.end_of_wal = None
        self.records_walked = 0
        self.first_prev = self.last_record = None
        return [self._next_record_position(start), None]     # next record, previous record

    def reached_limit(self) -> bool:
        return self._limit_reached

    def _stopped(self, exc, end):
        if end is not None:
            raise self._as_error(exc, "could not read the WAL record at %s (reading towards %s)"
                                 % (format_lsn(exc.lsn), format_lsn(end)))
        self.end_of_wal = exc

    def _walk_page(self, state, end, routes):
        """Visit the records that start on the page of state[0]; False once `end` is reached.
        Records that fit in the page are checked right here; the rest go through _read()."""
        lsn, prev = state[0], state[1]
        limit = state[2] if len(state) > 2 else 1 << 64
        if lsn >= limit:
            self._limit_reached = True
            return False
        chunk, base, page_off, page_lsn = self._record_page(lsn, True)
        stop = end if end is not None else 1 << 64
        unpack_header = _RECORD_HEADER.unpack_from
        max_rmid, custom_rmgrs = self.fmt.max_builtin_rmid, self.fmt.custom_rmgrs
        record_crc, in_place = self.record_crc, self.crc_in_place
        view = memoryview(chunk) if in_place is not None else None
        update = self.crc_update
        address = self._chunk_address if update is not None else 0
        visitors, whole, whole_info = routes
        visited = 0
        try:
            while True:
                start_off = base + page_off
                if page_off <= XLOG_BLCKSZ - RECORD_HEADER_SIZE:
                    header = unpack_header(chunk, start_off)
                    tot_len, xid, rec_prev, rec_info, rmid, rec_crc = header
                else:
                    tot_len = 0     # the header itself continues on the next page
                if page_off + tot_len > XLOG_BLCKSZ or tot_len < RECORD_HEADER_SIZE:
                    record, next_lsn = self._read(page_lsn + page_off, prev, True)
                    if record is None:          # an abandoned record: continue after it
                        state[0] = next_lsn
                        return True
                    if prev is None:
                        self.first_prev = record.prev
                    prev = record.lsn
                    visited += 1
                    (whole if record.info & whole_info else visitors[record.rmid])(
                        record.lsn, record.end_lsn, record.data, 0, record.tot_len,
                        record.xid, record.prev, record.info, record.rmid)
                    if record.end_lsn >= stop:
                        self._check_end(record.end_lsn, end)
                        return False
                    state[0] = self._next_record_position(next_lsn)
                    return True
                rec_lsn = page_lsn + page_off
                if rmid > max_rmid and not (custom_rmgrs and rmid >= 128):
                    raise EndOfWal("invalid resource manager ID %d at %s"
                                   % (rmid, format_lsn(rec_lsn)), rec_lsn)
                if rec_prev != prev:
                    if prev is not None or rec_prev >= rec_lsn:
                        raise EndOfWal("record with incorrect prev-link %s at %s"
                                       % (format_lsn(rec_prev), format_lsn(rec_lsn)), rec_lsn)
                    self.first_prev = rec_prev      # the first record of the walk
                if in_place is not None:
                    crc = in_place(view[start_off:start_off + 20],
                                   in_place(view[start_off + 24:start_off + tot_len]))
                elif update is not None:    # payload, then the header up to xl_crc
                    at = address + start_off
                    crc = update(update(0xFFFFFFFF, at + 24, tot_len - 24), at, 20) ^ 0xFFFFFFFF
                else:
                    crc = record_crc(chunk, start_off, tot_len)
                if crc != rec_crc:
                    raise EndOfWal("incorrect record checksum at %s" % format_lsn(rec_lsn),
                                   rec_lsn)
                page_off += (tot_len + 7) & ~7
                end_lsn = page_lsn + page_off
                if rmid == RM_XLOG_ID and rec_info & 0xF0 == XLOG_SWITCH:
                    end_lsn += -end_lsn % self.seg_size     # the rest of the segment is padding
                    page_off = XLOG_BLCKSZ
                prev = rec_lsn
                visited += 1
                (whole if rec_info & whole_info else visitors[rmid])(
                    rec_lsn, end_lsn, chunk, start_off, tot_len, xid, rec_prev, rec_info, rmid)
                if end_lsn >= stop:
                    self._check_end(end_lsn, end)
                    return False
                if page_off >= XLOG_BLCKSZ:
                    state[0] = self._next_record_position(end_lsn)
                    return True
                if page_lsn + page_off >= limit:
                    self._limit_reached = True
                    return False
        finally:
            state[1] = prev         # the last record visited
            self.records_walked += visited

    @staticmethod
    def _check_end(end_lsn, end):
        if end is not None and end_lsn != end:
            raise WalError("WAL reading ended at %s, which is not the expected end point %s."
                           % (format_lsn(end_lsn), format_lsn(end)), code="wal_end_mismatch")

    def _as_error(self, exc, context):
        if exc.missing_segment:
            return MissingWalError("%s: WAL segment %s is missing from %s."
                                   % (context, exc.missing_segment,
                                      getattr(self.segments, "path", "the WAL directory")),
                                   segment=exc.missing_segment, lsn=format_lsn(exc.lsn))
        return WalError("%s: %s." % (context, exc.reason), lsn=format_lsn(exc.lsn))
