# -*- coding: utf-8 -*-
# Copyright: pgops.rewind developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The target's changed blocks from PostgreSQL's WAL summaries (17+), instead of its WAL.

With `summarize_wal = on`, PostgreSQL 17+ writes pg_wal/summaries/
TTTTTTTTSSSSSSSSSSSSSSSSEEEEEEEEEEEEEEEE.summary files (timeline, start LSN, end LSN):
each holds, for every relation fork a WAL record of timeline T starting in [S, E)
touched, the blocks touched and a "limit block" -- the shortest length the fork had in
that range (0 when it was created or dropped; relation 0 of a database stands for all
of its relations). Every block at or beyond the limit must count as changed.

A summary is what incremental backups trust, built by the server from the same WAL a
scan reads; reading one costs milliseconds where scanning its WAL costs seconds per
hundred MB. It is used only when, on the timelines of the target's own history, the
summaries and short WAL scans of the stretches no summary covers (the tail after the
last summary is always one: the summarizer stops before the shutdown checkpoint)
together cover the whole range the full scan would read. Anything unusual -- a damaged
or unreadable summary, an unreadable gap, more WAL in gaps than in summaries -- returns
None: the caller scans the WAL as before. Whole-file events (creations, truncations,
drops) need nothing from here: the plan compares both file lists, as pg_rewind does;
limit blocks only widen the block set.
"""

from __future__ import annotations

import os
import re
import struct
from dataclasses import dataclass, field
from typing import NamedTuple, Optional

from ..pg.blockmap import DEFAULTTABLESPACE_OID, GLOBALTABLESPACE_OID, ChangedBlocks
from ..pg.crc32c import crc32c
from ..errors import WalError
from .scan import TargetChanges, scan_changes

SUMMARY_DIR = os.path.join("pg_wal", "summaries")
BLOCKREFTABLE_MAGIC = 0x652B137B          # src/include/common/blkreftable.h
BLOCKS_PER_CHUNK = 1 << 16
MAX_ENTRIES_PER_CHUNK = BLOCKS_PER_CHUNK // 16    # a chunk with this many uint16 is a bitmap
INVALID_BLOCK = 0xFFFFFFFF                # limit block of a fork never truncated
MAIN_FORKNUM = 0
MAX_SCAN_FRACTION = 0.5      # beyond this share of WAL in gaps, the (parallel) full scan wins

WAL_SUMMARIES = "wal_summaries"
WAL_SCAN = "wal_scan"

_NAME = re.compile(r"^([0-9A-F]{8})([0-9A-F]{16})([0-9A-F]{16})\.summary$")
# BlockRefTableSerializedEntry: spcOid, dbOid, relNumber, forknum, limit_block, nchunks
_ENTRY = struct.Struct("<IIIiII")
_REL_FILE = re.compile(r"^([1-9][0-9]*)(?:\.([1-9][0-9]*))?$")


class SummaryError(Exception):
    """A summary file that cannot be trusted (internal: the caller scans the WAL)."""


class SummaryFile(NamedTuple):
    tli: int
    start: int
    end: int
    path: str


class ForkEntry(NamedTuple):
    """One relation fork of a summary: its limit block and the bitmap of blocks touched
    (bit n of byte n // 8 = block n of the relation, up to the highest one touched)."""

    spc: int
    db: int
    rel: int
    fork: int
    limit: int
    bitmap: bytes


@dataclass
class SummarizedChanges(TargetChanges):
    """TargetChanges whose blocks come from summaries plus scans of the gaps."""

    summaries: list = field(default_factory=list)   # SummaryFile used
    scanned: list = field(default_factory=list)     # (start, end) of the WAL scanned

    @property
    def wal_bytes(self) -> int:
        """Bytes of WAL actually read (the gaps), not the range covered."""
        return sum(end - start for start, end in self.scanned)


def changes_source(changes) -> str:
    """Where a TargetChanges' blocks came from: WAL_SUMMARIES or WAL_SCAN."""
    return WAL_SUMMARIES if isinstance(changes, SummarizedChanges) else WAL_SCAN


def list_summaries(pgdata: str) -> list:
    """The summary files in the target's pg_wal/summaries (temp.summary and other names
    are not summaries)."""
    directory = os.path.join(pgdata, SUMMARY_DIR)
    try:
        names = os.listdir(directory)
    except (FileNotFoundError, NotADirectoryError):
        return []
    found = []
    for name in names:
        match = _NAME.match(name)
        if match:
            tli, start, end = (int(group, 16) for group in match.groups())
            if start < end:
                found.append(SummaryFile(tli, start, end, os.path.join(directory, name)))
    return sorted(found, key=lambda s: (s.start, s.end, s.tli))


def coverage(summaries: list, history: list, start: int, end: int):
    """(summaries used, gaps): which summaries describe WAL of [start, end) as the target's
    history reads it (timeline by timeline), and the [a, b) stretches none describes.

    A summary of timeline T covers the records that start in [S, E) on T, clipped to where
    the target's history reads T; more than needed is harmless (more blocks)."""
    pieces = []
    for entry in history:
        low = max(start, entry.begin)
        high = end if entry.end is None else min(end, entry.end)
        if low >= high:
            continue
        for summary in summaries:
            if summary.tli == entry.tli and summary.start < high and summary.end > low:
                pieces.append((max(summary.start, low), min(summary.end, high), summary))
    pieces.sort(key=lambda piece: (piece[0], -piece[1]))
    used, gaps, position = [], [], start
    for low, high, summary in pieces:
        if high <= position:
            continue
        if low > position:
            gaps.append((position, low))
        used.append(summary)
        position = high
    if position < end:
        gaps.append((position, end))
    return used, gaps


def read_summary(path: str) -> list:
    """The ForkEntry list of one summary file (src/common/blkreftable.c's format: magic,
    entries sorted by relation fork, each followed by its chunks' usage counts and the
    chunks -- an array of uint16 offsets, or a 65536-bit bitmap when full --, an all-zero
    sentinel entry, then the CRC-32C of everything before it). Raises SummaryError."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise SummaryError("cannot read %s: %s" % (path, exc)) from None
    if len(data) < 4 + _ENTRY.size + 4:
        raise SummaryError("%s is too short" % path)
    if struct.unpack_from("<I", data)[0] != BLOCKREFTABLE_MAGIC:
        raise SummaryError("%s has a wrong magic number" % path)
    if crc32c(data[:-4]) != struct.unpack_from("<I", data, len(data) - 4)[0]:
        raise SummaryError("%s has a wrong checksum" % path)
    entries, offset, stop = [], 4, len(data) - 4
    while True:
        if offset + _ENTRY.size > stop:
            raise SummaryError("%s ends inside an entry" % path)
        spc, db, rel, fork, limit, nchunks = _ENTRY.unpack_from(data, offset)
        offset += _ENTRY.size
        if not (spc or db or rel or fork or limit or nchunks):
            break
        if nchunks > (1 << 32) // BLOCKS_PER_CHUNK or offset + 2 * nchunks > stop:
            raise SummaryError("%s has an impossible chunk count %d" % (path, nchunks))
        usage = struct.unpack_from("<%dH" % nchunks, data, offset)
        offset += 2 * nchunks
        bitmap = bytearray()
        for chunkno, used in enumerate(usage):
            if not used:
                continue
            if used > MAX_ENTRIES_PER_CHUNK or offset + 2 * used > stop:
                raise SummaryError("%s has a damaged chunk" % path)
            base = chunkno * (BLOCKS_PER_CHUNK // 8)
            if used == MAX_ENTRIES_PER_CHUNK:        # a bitmap, uint16 words, LSB first
                chunk = data[offset:offset + 2 * used]
                _or_into(bitmap, base, chunk)
            else:
                for block in struct.unpack_from("<%dH" % used, data, offset):
                    index = base + (block >> 3)
                    if index >= len(bitmap):
                        bitmap.extend(bytes(index + 1 - len(bitmap)))
                    bitmap[index] |= 1 << (block & 7)
            offset += 2 * used
        entries.append(ForkEntry(spc, db, rel, fork, limit, bytes(bitmap)))
    if offset != stop:
        raise SummaryError("%s has bytes after its last entry" % path)
    return entries


def _or_into(bitmap: bytearray, index: int, chunk: bytes) -> None:
    if len(bitmap) < index + len(chunk):
        bitmap.extend(bytes(index + len(chunk) - len(bitmap)))
    current = int.from_bytes(bitmap[index:index + len(chunk)], "little")
    merged = current | int.from_bytes(chunk, "little")
    bitmap[index:index + len(chunk)] = merged.to_bytes(len(chunk), "little")


class _RelationSizes:
    """Sizes of the target's main-fork segment files, one directory listing per database
    directory (limit blocks name relations; what counts is what the target holds)."""

    def __init__(self, pgdata: str, tablespace_dir: str):
        self.pgdata = pgdata
        self.tablespace_dir = tablespace_dir
        self._dirs = {}

    def directory(self, spc: int, db: int) -> str:
        if spc == GLOBALTABLESPACE_OID:
            return os.path.join(self.pgdata, "global")
        if spc == DEFAULTTABLESPACE_OID:
            return os.path.join(self.pgdata, "base", str(db))
        return os.path.join(self.pgdata, "pg_tblspc", str(spc), self.tablespace_dir, str(db))

    def relations(self, spc: int, db: int) -> dict:
        """{relation: {segno: size in bytes}} of the main forks in one database directory."""
        key = (spc, db)
        if key not in self._dirs:
            found = {}
            directory = self.directory(spc, db)
            try:
                names = os.listdir(directory)
            except (FileNotFoundError, NotADirectoryError):
                names = []
            for name in names:
                match = _REL_FILE.match(name)
                if match:
                    size = os.stat(os.path.join(directory, name)).st_size
                    found.setdefault(int(match.group(1)), {})[int(match.group(2) or 0)] = size
            self._dirs[key] = found
        return self._dirs[key]


def _add_relation_bitmap(blocks, spc, db, rel, bitmap: bytes) -> None:
    """Split a relation-wide bitmap into its segment files' bitmaps."""
    relseg = blocks.relseg_size
    if relseg % 8:                       # odd segment sizes (test builds): block by block
        for index, byte in enumerate(bitmap):
            for bit in range(8):
                if byte >> bit & 1:
                    blocks.add(spc, db, rel, index * 8 + bit)
        return
    step = relseg // 8
    for segno, first in enumerate(range(0, len(bitmap), step)):
        part = bitmap[first:first + step]
        if any(part):
            blocks.add_bitmap((spc, db, rel, segno), part)


def _add_from_limit(blocks, spc, db, rel, limit, segments: dict, blcksz: int) -> None:
    """Every block at or beyond `limit` the target's segment files of `rel` hold."""
    relseg = blocks.relseg_size
    for segno, size in segments.items():
        first_block = segno * relseg
        count = size // blcksz
        low = max(limit - first_block, 0)
        if low < count:
            run = ((1 << (count - low)) - 1) << low
            blocks.add_bitmap((spc, db, rel, segno), run.to_bytes((count + 7) // 8, "little"))


def blocks_from_summaries(summaries: list, blocks, pgdata: str, tablespace_dir: str,
                          blcksz: int) -> None:
    """Add to `blocks` (ChangedBlocks) every main-fork block the summaries say may differ
    from before: blocks touched, and blocks at or beyond a limit block on the target."""
    sizes = _RelationSizes(pgdata, tablespace_dir)
    for summary in summaries:
        for entry in read_summary(summary.path):
            if entry.fork != MAIN_FORKNUM:
                continue                     # other forks are copied whole
            if entry.rel == 0:               # a database created or dropped: all of it
                if entry.limit != INVALID_BLOCK:
                    for rel, segments in sizes.relations(entry.spc, entry.db).items():
                        _add_from_limit(blocks, entry.spc, entry.db, rel, 0, segments, blcksz)
                continue
            if entry.bitmap:
                _add_relation_bitmap(blocks, entry.spc, entry.db, entry.rel, entry.bitmap)
            if entry.limit != INVALID_BLOCK:
                segments = sizes.relations(entry.spc, entry.db).get(entry.rel, {})
                _add_from_limit(blocks, entry.spc, entry.db, entry.rel, entry.limit,
                                segments, blcksz)


def changes_from_summaries(pgdata: str, control, history: list, start: int, end: int,
                           open_reader, max_scan_fraction: float = MAX_SCAN_FRACTION,
                           count_from: Optional[int] = None) -> Optional[SummarizedChanges]:
    """The changes of [start, end) from the target's summaries and WAL scans of the gaps
    between them, or None when the full WAL scan must decide (no summaries, too little
    covered, a summary or a gap that cannot be read). With `count_from` (the fork), the
    WAL from there to the end is read too, for the discarded-work count."""
    if not control.fmt.wal_summaries or end <= start:
        return None
    used, gaps = coverage(list_summaries(pgdata), history, start, end)
    if not used or sum(b - a for a, b in gaps) > max_scan_fraction * (end - start):
        return None
    if count_from is not None:
        gaps = with_tail_read(gaps, max(start, count_from), end)
    changes = SummarizedChanges(ChangedBlocks(control.relseg_size), start, end,
                                summaries=used, scanned=gaps)
    try:
        blocks_from_summaries(used, changes.blocks, pgdata, control.fmt.tablespace_dir,
                              control.blcksz)
    except (SummaryError, OSError):
        return None
    reader = open_reader()
    try:
        for index, (low, high) in enumerate(gaps):
            last = high == end and index == len(gaps) - 1
            counting = count_from if last and count_from is not None else None
            part = scan_changes(reader, low, end if last else None, control.fmt,
                                control.relseg_size, limit=None if last else high,
                                count_from=counting)
            if counting is not None:
                changes.discarded = part.discarded
            changes.blocks.merge(part.blocks)
            changes.records += part.records
            for kind, number in part.file_events.items():
                changes.file_events[kind] = changes.file_events.get(kind, 0) + number
    except WalError:
        return None          # the full scan reads the same WAL and says what is wrong
    finally:
        reader.close()
    return changes


def with_tail_read(gaps: list, tail_start: int, end: int) -> list:
    """The gaps to scan, with [tail_start, end) read whole: ranges sorted, overlapping
    or touching ones merged."""
    merged = []
    for low, high in sorted(list(gaps) + [(tail_start, end)]):
        if merged and low <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], high))
        else:
            merged.append((low, high))
    return merged
