# -*- coding: utf-8 -*-
# Copyright: pgops.rewind developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading WAL records, validated: on the validated pages of wal/pages.py, each record
is assembled (across pages and segments when it spans them) and checked before anyone
sees it: its length, its resource manager, its prev-link, its CRC-32C.

Every record goes through one loop, `WalReader._walk_page`, and every check exists
once: the forward scan (`walk`) runs the loop page after page, the random access of
the backward search (`record_at`) runs it for one record. A record abandoned at a
crash (XLP_FIRST_IS_OVERWRITE_CONTRECORD) is skipped, the rest of a segment after an
XLOG_SWITCH jumped over. What the bytes of a record mean is wal/record.py's job.
"""

from __future__ import annotations

import struct
from typing import Optional

from ..errors import WalError
from ..pg import crc32c as crc_module
from ..pg.lsn import XLOG_BLCKSZ, format_lsn, maxalign
from .pages import XLP_FIRST_IS_CONTRECORD, XLP_FIRST_IS_OVERWRITE_CONTRECORD, EndOfWal, \
    WalPages
from .record import RM_XLOG_ID, SIZE_OF_RECORD_HEADER, XLOG_SWITCH

MAX_RECORD_SIZE = 1020 * 1024 * 1024   # XLogRecordMaxSize: larger lengths are garbage
LAST_HEADER_OFFSET = XLOG_BLCKSZ - SIZE_OF_RECORD_HEADER   # a header from here on fits the page
NO_LIMIT = 1 << 64                     # past every LSN

_RECORD_HEADER = struct.Struct("<IIQBBxxI")  # tot_len, xid, prev, info, rmid, crc
_U32 = struct.Struct("<I")


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

    @classmethod
    def visited(cls, lsn, end_lsn, buf, off, tot_len, xid, prev, info, rmid):
        """The record a walk visitor is given (the record being buf[off:off + tot_len])."""
        return cls(lsn, end_lsn, memoryview(buf)[off:off + tot_len], tot_len, xid, prev, info,
                   rmid)

    def __repr__(self):
        return "<RawRecord %s rmid %d info %02X len %d>" % (
            format_lsn(self.lsn), self.rmid, self.info, self.tot_len)


class _Walk:
    """Where a reading is: the next record's position, the last record read (the next
    one's prev-link must point to it; None: not known, random access), and counts."""

    __slots__ = ("next", "prev", "limit", "first_prev", "visited", "limit_reached",
                 "crc_batch")

    def __init__(self, position, limit=NO_LIMIT, crc_batch=False):
        self.next = position
        self.prev = None
        self.limit = limit
        self.first_prev = None
        self.visited = 0
        self.limit_reached = False
        # The records of a page checked in one CRC call after they were visited (_CrcBatch):
        # only where a bad CRC fails the whole reading, so visiting early changes nothing.
        self.crc_batch = _CrcBatch() if crc_batch else None


class _CrcBatch:
    """Records whose CRC-32C is checked together, in one call of libext2fs's register
    update instead of two per record (the call costs more than the checksum of a short
    record): (payload, header, RECORD_RESET) per record ends the register at ~0 when
    every xl_crc is right (pg/crc32c.py). Otherwise each record is checked on its own to
    find the first one wrong."""

    __slots__ = ("parts", "lsns")

    def __init__(self):
        self.parts = []
        self.lsns = []

    def check(self, update, record_crc) -> None:
        parts, lsns = self.parts, self.lsns
        self.parts, self.lsns = [], []
        data = b"".join(parts)
        if update(0xFFFFFFFF, data, len(data)) == 0xFFFFFFFF:
            return
        for index, lsn in enumerate(lsns):
            record = bytes(parts[3 * index + 1]) + bytes(parts[3 * index])  # header, payload
            if record_crc(record, 0, len(record)) != _U32.unpack_from(record, 20)[0]:
                raise EndOfWal("incorrect record checksum at %s" % format_lsn(lsn), lsn)
        raise EndOfWal("incorrect record checksums in the records from %s"
                       % format_lsn(lsns[0]), lsns[0])


class WalReader(WalPages):
    """Validated records from the segments of one timeline history."""

    def __init__(self, segments, fmt, seg_size: int, history: list,
                 system_identifier: Optional[int] = None):
        super().__init__(segments, fmt, seg_size, history, system_identifier)
        self.end_of_wal = None           # after walk(end=None): why reading stopped
        self.record_crc = self.crc_in_place = self.crc_update = None
        self.use_crc(crc_module.IMPLEMENTATION)
        self.records_walked = 0          # after walk(): records visited,
        self.first_prev = None           # the prev-link of the first one,
        self.last_record = None          # and the LSN of the last one
        self._limit_reached = False

    def use_crc(self, implementation: str) -> None:
        """Checksum records with this CRC-32C implementation (crc32c.load). The C
        package's function is also called in place on slices of the page, saving a
        Python call per record in the hot loop."""
        crc, self.record_crc = crc_module.load(implementation)
        self.crc_in_place = crc if implementation == "c" else None
        self.crc_update = crc_module.register_update(implementation)   # ext2fs: by address
        self.address_chunks = self.crc_update is not None
        if self.address_chunks and self._chunk:
            self._chunk_address = crc_module.bytes_address(self._chunk)

    # --- the two ways in ---------------------------------------------------
    def record_at(self, lsn: int) -> RawRecord:
        """The record starting at `lsn` (random access: its prev-link must point back)."""
        got = []

        def collect(*record):
            got.append(RawRecord.visited(*record))
        position = self._next_record_position(lsn)
        try:                # one record: the walk stops before any that starts after it
            self._walk_page(_Walk(position, position + 1), None, ([collect] * 256, collect, 0),
                            sequential=False)
        except EndOfWal as exc:
            raise self._as_error(exc, "could not read the WAL record at %s" % format_lsn(lsn))
        if not got:
            raise WalError("the WAL record at %s was never completed (overwritten after a "
                           "crash)" % format_lsn(lsn), code="wal_corrupt")
        return got[0]

    def walk(self, start: int, end: Optional[int], visit, limit: Optional[int] = None,
             whole=None, routes=None) -> None:
        """Call visit(lsn, end_lsn, buf, offset, tot_len, xid, prev, info, rmid) for each
        record from `start` on, the record being buf[offset:offset + tot_len]. With `end`,
        read until a record ends exactly there and fail on anything that stops the
        reading earlier; without, stop at the end of valid WAL and leave the reason in
        `end_of_wal`. With `limit`, records starting at or after it are not read (a part
        of a parallel scan). With whole=(callback, info_mask, rmids), a record with a bit
        of info_mask in its info or a resource manager in rmids goes to callback instead;
        routes={rmid: callback} sends the records of those resource managers to theirs.
        Counts in records_walked, first_prev and last_record. The hot loop of every WAL
        scan: a callback per record costs a fraction of a generator step."""
        self._latest_page_tli = 0
        self.end_of_wal = None
        fatal = end is not None or limit is not None   # a bad CRC stops this reading with an error
        state = _Walk(self._next_record_position(start), limit if limit is not None else NO_LIMIT,
                      crc_batch=fatal and self.crc_update is not None)
        visitors = [visit] * 256            # by resource manager id (one byte)
        for rmid, callback in (routes or {}).items():
            visitors[rmid] = callback
        whole_visit, whole_info = visit, 0
        if whole is not None:
            whole_visit, whole_info, whole_rmids = whole
            for rmid in whole_rmids:
                visitors[rmid] = whole_visit
        try:
            while self._walk_page(state, end, (visitors, whole_visit, whole_info)):
                pass
        except EndOfWal as exc:
            if end is not None:
                raise self._as_error(exc, "could not read the WAL record at %s (reading "
                                     "towards %s)" % (format_lsn(exc.lsn), format_lsn(end)))
            self.end_of_wal = exc
        finally:
            self.records_walked, self.first_prev = state.visited, state.first_prev
            self.last_record, self._limit_reached = state.prev, state.limit_reached

    def reached_limit(self) -> bool:
        return self._limit_reached

    # --- the one loop ------------------------------------------------------
    def _walk_page(self, state, end, routes, sequential=True):
        """Check and visit the records that start on the page of state.next; False once
        `end` or the limit is reached. The checks of a record, in PostgreSQL's order:
        its length (_gather: only a record that does not fit the page can have a wrong
        one), resource manager and prev-link (_check_header, called unless the record
        plainly passes), the continuation pages of a record that spans them (_gather),
        its CRC-32C, then what an XLOG_SWITCH means. With libext2fs, where a bad CRC
        fails the whole reading (state.crc_batch), the CRCs of the page's records are
        checked together when the page is left, before anything else is reported.
        Written once, inline where a record is common: this loop runs for every record
        of a scan."""
        lsn, prev, limit = state.next, state.prev, state.limit
        if lsn >= limit:
            state.limit_reached = True
            return False
        chunk, base, page_off, page_lsn = self._record_page(lsn, sequential)
        stop = end if end is not None else NO_LIMIT
        unpack_header = _RECORD_HEADER.unpack_from
        max_rmid = self.fmt.max_builtin_rmid
        record_crc, in_place = self.record_crc, self.crc_in_place
        batch = state.crc_batch
        if batch is not None:
            batch_add, batch_lsn, reset = batch.parts.extend, batch.lsns.append, \
                crc_module.RECORD_RESET
        view = memoryview(chunk) if in_place is not None or batch is not None else None
        update = self.crc_update
        address = self._chunk_address if update is not None else 0
        visitors, whole, whole_info = routes
        visited = 0
        try:
            while True:
                rec_lsn = page_lsn + page_off
                start_off = base + page_off
                if page_off <= LAST_HEADER_OFFSET:
                    header = unpack_header(chunk, start_off)
                    tot_len, xid, rec_prev, rec_info, rmid, rec_crc = header
                else:
                    tot_len = 0     # the header itself continues on the next page
                if page_off + tot_len > XLOG_BLCKSZ or tot_len < SIZE_OF_RECORD_HEADER:
                    chunk, end_lsn = self._gather(chunk, start_off, rec_lsn, prev, sequential)
                    if chunk is None:       # abandoned at a crash: continue after it
                        state.next = end_lsn
                        return True
                    start_off, page_off = 0, XLOG_BLCKSZ   # the next record is on a later page
                    tot_len, xid, rec_prev, rec_info, rmid, rec_crc = unpack_header(chunk, 0)
                    if view is not None:
                        view = memoryview(chunk)
                    elif update is not None:
                        address = crc_module.bytes_address(chunk)
                else:
                    page_off += (tot_len + 7) & ~7
                    end_lsn = page_lsn + page_off
                if rec_prev != prev or rmid > max_rmid:
                    self._check_header(rmid, rec_prev, rec_lsn, prev)
                    if prev is None:
                        state.first_prev = rec_prev     # the first record of the walk
                if batch is not None:       # checked with the page's other records
                    batch_add((view[start_off + 24:start_off + tot_len],
                               view[start_off:start_off + 24], reset))
                    batch_lsn(rec_lsn)
                    crc = rec_crc
                elif in_place is not None:
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
                    state.next = self._next_record_position(end_lsn)
                    return True
                if page_lsn + page_off >= limit:
                    state.limit_reached = True
                    return False
        finally:
            state.prev = prev         # the last record visited
            state.visited += visited
            if batch is not None and batch.lsns:
                batch.check(update, record_crc)   # a bad CRC replaces whatever went wrong

    def _check_header(self, rmid, prev, lsn, expected_prev):
        """The header rules: a resource manager of this major (or a custom one, 15+); a
        prev-link that points backwards, and in a sequential reading exactly to the
        record before (random access, expected_prev None, cannot know which that is)."""
        if rmid > self.fmt.max_builtin_rmid and not (self.fmt.custom_rmgrs and rmid >= 128):
            raise EndOfWal("invalid resource manager ID %d at %s" % (rmid, format_lsn(lsn)), lsn)
        if prev >= lsn:
            raise EndOfWal("record with incorrect prev-link %s at %s"
                           % (format_lsn(prev), format_lsn(lsn)), lsn)
        if expected_prev is not None and prev != expected_prev:
            raise EndOfWal("record with incorrect prev-link %s at %s (expected %s)"
                           % (format_lsn(prev), format_lsn(lsn), format_lsn(expected_prev)), lsn)

    def _gather(self, chunk, start, lsn, expected_prev, sequential):
        """The bytes of the record at chunk[start:] that does not fit its page, gathered
        from the pages after it: (bytes, end LSN), or (None, where reading goes on) for a
        record abandoned at a crash. Checks its length, and its header before reading
        further when the header is on this page (garbage fails here, not as a missing
        segment far ahead)."""
        page_off = lsn % XLOG_BLCKSZ
        avail = XLOG_BLCKSZ - page_off
        tot_len = _U32.unpack_from(chunk, start)[0]
        if tot_len < SIZE_OF_RECORD_HEADER or tot_len > MAX_RECORD_SIZE:
            raise EndOfWal("invalid record length %d at %s" % (tot_len, format_lsn(lsn)), lsn)
        if avail >= SIZE_OF_RECORD_HEADER:
            header = _RECORD_HEADER.unpack_from(chunk, start)
            self._check_header(header[4], header[2], lsn, expected_prev)
        parts = [bytes(chunk[start:start + avail])]
        got = avail
        next_page = lsn - page_off + XLOG_BLCKSZ
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
        return b"".join(parts), end_lsn

    @staticmethod
    def _check_end(end_lsn, end):
        if end is not None and end_lsn != end:
            raise WalError("WAL reading ended at %s, which is not the expected end point %s."
                           % (format_lsn(end_lsn), format_lsn(end)), code="wal_end_mismatch")
