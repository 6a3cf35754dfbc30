# -*- coding: utf-8 -*-
# Copyright: pgops.rewind developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Timeline histories and where two clusters' histories fork.

A history is the list of timelines a cluster went through, oldest first, each
with the WAL range it covers; `NNNNNNNN.history` files record the ancestors of
timeline N. Two clusters share the prefix of their histories up to the fork.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Optional

from ..errors import TimelineError
from .lsn import format_lsn, history_file_name

_LINE = re.compile(r"^\s*(\d+)\s+([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})")


@dataclass(frozen=True)
class TimelineEntry:
    """Timeline `tli` covers WAL from `begin` up to `end` (None: still open)."""

    tli: int
    begin: int
    end: Optional[int]

    def as_dict(self) -> dict:
        return {"timeline": self.tli, "begin": format_lsn(self.begin),
                "end": None if self.end is None else format_lsn(self.end)}


@dataclass(frozen=True)
class Divergence:
    """Where two histories fork: the last common timeline and the first LSN not shared."""

    tli: int
    lsn: int
    target_index: int   # index of `tli` in the target's history

    def as_dict(self) -> dict:
        return {"timeline": self.tli, "lsn": format_lsn(self.lsn)}


def parse_history(text: str, tli: int, name: str = "") -> list:
    """Entries of `NNNNNNNN.history` for timeline `tli`, with `tli` itself appended."""
    name = name or history_file_name(tli)
    entries = []
    previous_end = 0
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _LINE.match(line)
        if not match:
            raise TimelineError(
                "syntax error in history file %s, line %d: expected a timeline ID and a "
                "WAL switch point, found %r." % (name, number, line[:80]),
                hint="The file is damaged; copy it from the new primary's pg_wal or the WAL archive.",
                code="history_syntax")
        parent = int(match.group(1))
        switchpoint = (int(match.group(2), 16) << 32) | int(match.group(3), 16)
        if entries and parent <= entries[-1].tli:
            raise TimelineError("invalid data in history file %s, line %d: timeline IDs must "
                                "be in increasing sequence." % (name, number),
                                code="history_invalid")
        if switchpoint < previous_end:
            raise TimelineError("invalid data in history file %s, line %d: switch points must "
                                "not go backwards." % (name, number), code="history_invalid")
        entries.append(TimelineEntry(parent, previous_end, switchpoint))
        previous_end = switchpoint
    if entries and entries[-1].tli >= tli:
        raise TimelineError("invalid data in history file %s: timeline IDs must be less than "
                            "the child timeline's ID %d." % (name, tli), code="history_invalid")
    if tli > 1 and not entries:
        raise TimelineError("history file %s lists no parent timeline." % name,
                            code="history_invalid")
    entries.append(TimelineEntry(tli, previous_end, None))
    return entries


def history_of(tli: int, read_history: Callable[[str], Optional[bytes]], side: str) -> list:
    """The history of timeline `tli`, reading `NNNNNNNN.history` with `read_history`
    (returns the bytes, or None when the file does not exist)."""
    if tli == 1:
        return [TimelineEntry(1, 0, None)]
    name = history_file_name(tli)
    data = read_history("pg_wal/" + name)
    if data is None:
        raise TimelineError(
            "the %s is on timeline %d but its pg_wal/%s is missing." % (side, tli, name),
            hint="Copy %s from the WAL archive into the %s's pg_wal." % (name, side),
            code="history_missing")
    try:
        text = bytes(data).decode("ascii")
    except UnicodeDecodeError:
        raise TimelineError("history file %s of the %s is not text." % (name, side),
                            hint="Copy it again from the WAL archive.",
                            code="history_syntax") from None
    return parse_history(text, tli, "%s's pg_wal/%s" % (side, name))


def find_divergence(source: list, target: list) -> Divergence:
    """The last timeline both histories share and the LSN where they part.

    Entries must match in timeline number *and* start: two clusters that each
    created a timeline with the same number independently do not share it.
    """
    common = 0
    for src, tgt in zip(source, target):
        if src.tli != tgt.tli or src.begin != tgt.begin:
            break
        common += 1
    if common == 0:
        raise TimelineError(
            "could not find a common ancestor of the source's and the target's timelines.",
            hint="The two clusters do not share history; rebuild the target from a base backup.",
            code="no_common_ancestor")
    index = common - 1
    ends = [e for e in (source[index].end, target[index].end) if e is not None]
    return Divergence(target[index].tli, min(ends) if ends else 0, index)


def descends_from_current(source: list, target: list, divergence: Divergence) -> bool:
    """The target's history goes on past the source's current (open) timeline: the target
    was promoted from it later, so it is the newer primary (`divergence` as found, twin
    timelines already told apart)."""
    last = len(source) - 1
    return (divergence.target_index == last and source[last].end is None
            and len(target) > len(source))


def timeline_of_segment(history: list, seg_start: int, seg_end: int) -> int:
    """Which timeline's file holds WAL segment [seg_start, seg_end): the newest
    timeline in `history` that began before the segment ends (a segment holding a
    switch is read from the newer timeline's file, which copies the older prefix)."""
    chosen = history[0].tli
    for entry in history:
        if entry.begin < seg_end:
            chosen = entry.tli
    return chosen
