# -*- coding: utf-8 -*-
# Copyright: pgops.rewind developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Twin timelines: one timeline number, two histories.

Two standbys of one primary promoted each on its own (two failover managers, or a
manual promotion after an automatic one) both create timeline 2. The number says
nothing about which history is meant; what does:
  - the history files' contents: twins promoted at different WAL locations have
    different switch points in 00000002.history (timeline.find_divergence compares
    each timeline's start, so they part at the earlier switch point);
  - the WAL itself, for twins promoted at the very same location (both had received
    everything the old primary wrote): their history files are identical, but the
    first record of each timeline is the promotion's end-of-recovery record, which
    carries the time of that promotion, so the first bytes of the timeline differ;
  - the target's last checkpoint record, which a source that shares the target's
    whole history has byte for byte at the same location.
WAL that one side no longer holds cannot be compared: that is reported (not
guessed), and the decision then rests on the history files alone.
"""

from __future__ import annotations

import os
from typing import Callable, Optional

from ..errors import RefusedError, TimelineError
from .lsn import format_lsn, history_file_name, segment_name
from .timeline import Divergence, history_of, timeline_of_segment

# How much WAL from the start of a timeline is compared: a page header and the
# end-of-recovery record, with room to spare.
TIMELINE_START_BYTES = 1024

SAME, DIFFERENT, NOT_AVAILABLE = "same", "different", "not_available"


def comparable_history(tli: int, read_file: Callable, side: str) -> list:
    """The history of `tli` on one side of a same-numbered pair; a missing history file
    makes the pair impossible to compare, which is a refusal, never "same timeline"."""
    try:
        return history_of(tli, read_file, side)
    except TimelineError as exc:
        if exc.code != "history_missing":
            raise
        raise RefusedError(
            "source and target are both on timeline %d, but the %s's pg_wal/%s is missing: "
            "whether they share that timeline cannot be decided from its number alone "
            "(two promotions may each have created a timeline %d)." % (tli, side,
                                                                       history_file_name(tli), tli),
            hint="Copy %s from the WAL archive (or from the node that created timeline %d) "
                 "into the %s's pg_wal and run again." % (history_file_name(tli), tli, side),
            code="history_not_comparable") from None


def read_wal_range(read: Callable, history: list, seg_size: int, start: int,
                   end: int) -> Optional[bytes]:
    """The WAL bytes [start, end) from the segment files `history` names, read with
    read(path, offset, length); None when a file is missing or short."""
    chunks = []
    lsn = start
    while lsn < end:
        seg_start = lsn - lsn % seg_size
        tli = timeline_of_segment(history, seg_start, seg_start + seg_size)
        length = min(end, seg_start + seg_size) - lsn
        data = read("pg_wal/" + segment_name(tli, seg_start // seg_size, seg_size),
                    lsn - seg_start, length)
        if data is None or len(data) < length:
            return None
        chunks.append(bytes(data[:length]))
        lsn += length
    return b"".join(chunks)


def local_reader(pgdata: str) -> Callable:
    def read(path, offset, length):
        try:
            with open(os.path.join(pgdata, path), "rb") as handle:
                return os.pread(handle.fileno(), length, offset)
        except FileNotFoundError:
            return None
    return read


def source_reader(source) -> Callable:
    return source.read_range


class WalComparison:
    """Compares the same WAL range on both sides, up to where both have written."""

    def __init__(self, read_target, target_history, read_source, source_history,
                 seg_size: int, limit: int):
        self.sides = ((read_target, target_history), (read_source, source_history))
        self.seg_size = seg_size
        self.limit = limit
        self.compared = []          # what was compared, for the result

    def verdict(self, what: str, start: int, end: int) -> str:
        end = min(end, self.limit)
        found = NOT_AVAILABLE
        if start < end:
            target, source = (read_wal_range(read, history, self.seg_size, start, end)
                              for read, history in self.sides)
            if target is not None and source is not None:
                found = SAME if target == source else DIFFERENT
        self.compared.append({"what": what, "start": format_lsn(start),
                              "end": format_lsn(max(start, end)), "result": found})
        return found


def shared_timeline_start(divergence: Divergence, target_history: list,
                          compare: WalComparison) -> Divergence:
    """`divergence` moved back to the start of the last common timeline when that
    timeline's first WAL differs on the two sides (twins promoted at the same
    location); repeated for its parents, which may be twins as well."""
    index, lsn = divergence.target_index, divergence.lsn
    while index > 0:
        begin = target_history[index].begin
        end = begin + TIMELINE_START_BYTES if lsn == 0 else min(lsn, begin + TIMELINE_START_BYTES)
        what = "start of timeline %d" % target_history[index].tli
        if compare.verdict(what, begin, end) != DIFFERENT:
            break
        index, lsn = index - 1, begin
    if index == divergence.target_index:
        return divergence
    return Divergence(target_history[index].tli, lsn, index)


def same_timeline_diverged(target_history: list, what: str) -> Divergence:
    """Both wrote different WAL on one timeline without a promotion between them (a
    copied data directory started as a primary): the latest point their histories
    verifiably share is where that timeline began."""
    index = len(target_history) - 1
    tli = target_history[index].tli
    if index == 0:
        raise RefusedError(
            "source and target are both on timeline %d, but the target's %s is not in the "
            "source's WAL: they wrote different WAL on the same timeline, and no earlier "
            "point both histories share is known." % (tli, what),
            hint="Check that the source is this node's new primary; otherwise rebuild the "
                 "target from a base backup of the new primary.",
            code="same_timeline_diverged")
    return Divergence(target_history[index - 1].tli, target_history[index].begin, index - 1)
