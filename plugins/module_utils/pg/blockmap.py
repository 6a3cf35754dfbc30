# -*- coding: utf-8 -*-
# Copyright: pgops.rewind developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The blocks the target changed after the fork, per relation segment file.

A relation is stored in 1 GB segment files (`relseg_size` blocks each); a rewind
copies blocks per file, so blocks are kept per (tablespace, database, relation,
segment) as a bitmap: one bit per block up to the highest block changed. Memory
grows with the number of changed blocks (and files), never with the amount of WAL
that changed them.
"""

from __future__ import annotations

import struct
from typing import Iterator, NamedTuple

GLOBALTABLESPACE_OID = 1664
DEFAULTTABLESPACE_OID = 1663


class RelFileSegment(NamedTuple):
    """One segment file of a relation's main fork."""

    spc: int
    db: int
    rel: int
    segno: int

    def path(self, tablespace_dir: str) -> str:
        """Path relative to the data directory (main fork, as PostgreSQL names it)."""
        if self.spc == GLOBALTABLESPACE_OID:
            base = "global/%d" % self.rel
        elif self.spc == DEFAULTTABLESPACE_OID:
            base = "base/%d/%d" % (self.db, self.rel)
        else:
            base = "pg_tblspc/%d/%s/%d/%d" % (self.spc, tablespace_dir, self.db, self.rel)
        return base if self.segno == 0 else "%s.%d" % (base, self.segno)


class ChangedBlocks:
    """Sets of changed block numbers (within their segment) per RelFileSegment."""

    def __init__(self, relseg_size: int = 131072):
        self.relseg_size = relseg_size
        self._maps = {}
        self._count = 0

    def add(self, spc: int, db: int, rel: int, blkno: int) -> None:
        segno, block = divmod(blkno, self.relseg_size)
        key = (spc, db, rel, segno)
        bitmap = self._maps.get(key)
        if bitmap is None:
            bitmap = self._maps[key] = bytearray()
        index = block >> 3
        if index >= len(bitmap):
            bitmap.extend(bytes(index + 1 - len(bitmap)))
        bit = 1 << (block & 7)
        if not bitmap[index] & bit:
            bitmap[index] |= bit
            self._count += 1

    def __len__(self) -> int:
        return self._count

    def __contains__(self, key) -> bool:
        return tuple(key) in self._maps

    def segments(self) -> list:
        return [RelFileSegment(*key) for key in sorted(self._maps)]

    def blocks(self, key: RelFileSegment) -> list:
        """Changed blocks of one segment file, ascending (block numbers within the file)."""
        bitmap = self._maps.get(tuple(key))
        if not bitmap:
            return []
        found = []
        for index, byte in enumerate(bitmap):
            if byte:
                base = index << 3
                found.extend(base + bit for bit in range(8) if byte >> bit & 1)
        return found

    def merge(self, other: "ChangedBlocks") -> None:
        """Add every block of `other` (same segment size)."""
        for key, theirs in other._maps.items():
            mine = self._maps.get(key)
            if mine is None:
                self._maps[key] = bytearray(theirs)
                self._count += sum(bin(byte).count("1") for byte in theirs)
                continue
            if len(mine) < len(theirs):
                mine.extend(bytes(len(theirs) - len(mine)))
            for index, byte in enumerate(theirs):
                new = byte & ~mine[index]
                if new:
                    mine[index] |= new
                    self._count += bin(new).count("1")

    def add_bitmap(self, key, bitmap: bytes) -> None:
        """OR a segment's bitmap (bit n of byte n // 8 = block n) into its blocks, at C
        speed (WAL summaries hand over whole bitmaps)."""
        key = tuple(key)
        mine = self._maps.get(key)
        if mine is None:
            mine = self._maps[key] = bytearray()
        if len(mine) < len(bitmap):
            mine.extend(bytes(len(bitmap) - len(mine)))
        before = int.from_bytes(mine, "little")
        merged = before | int.from_bytes(bitmap, "little")
        mine[:] = merged.to_bytes(len(mine), "little")
        self._count += bin(merged).count("1") - bin(before).count("1")

    # --- persistence (the journal of an interrupted rewind) --------------------
    _HEAD = struct.Struct("<IIIII")   # spc, db, rel, segno, bitmap length

    def to_bytes(self) -> bytes:
        parts = [struct.pack("<II", self.relseg_size, len(self._maps))]
        for key in sorted(self._maps):
            bitmap = self._maps[key]
            parts.append(self._HEAD.pack(*key, len(bitmap)))
            parts.append(bytes(bitmap))
        return b"".join(parts)

    @classmethod
    def from_bytes(cls, data: bytes) -> "ChangedBlocks":
        relseg_size, count = struct.unpack_from("<II", data)
        blocks = cls(relseg_size)
        offset = 8
        for _unused in range(count):
            spc, db, rel, segno, length = cls._HEAD.unpack_from(data, offset)
            offset += cls._HEAD.size
            bitmap = bytearray(data[offset:offset + length])
            if len(bitmap) != length:
                raise ValueError("changed-block map is truncated")
            offset += length
            blocks._maps[(spc, db, rel, segno)] = bitmap
            blocks._count += sum(bin(byte).count("1") for byte in bitmap)
        if offset != len(data):
            raise ValueError("changed-block map has trailing bytes")
        return blocks


def block_runs(blocks, max_blocks=None, max_gap=0) -> Iterator:
    """Ascending block numbers as (first, count) runs of consecutive blocks, each at
    most max_blocks long when given (so one request stays bounded). With max_gap, runs
    separated by at most that many blocks are one run, gap included."""
    start = previous = None
    for block in blocks:
        if previous is not None and block - previous <= max_gap + 1 and (
                max_blocks is None or block - start < max_blocks):
            previous = block
            continue
        if start is not None:
            yield start, previous - start + 1
        start = previous = block
    if start is not None:
        yield start, previous - start + 1
