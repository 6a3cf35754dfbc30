# -*- coding: utf-8 -*-
# Copyright: pgops.rewind developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The facts of a rewind, gathered without writing anything.

Both control files, the preconditions, both timelines and histories, where they
fork, where the target's WAL ends, whether a rewind is needed at all, and (when
it is) the last common checkpoint. `pg_rewind_info` reports these facts; the
rewind acts on them.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Optional

from ..pg.controlfile import CONTROL_PATH, ControlFile, read_control_file
from ..pg.datadir import STATE_DIR
from ..errors import RefusedError
from ..pg.lsn import first_record_position, format_lsn
from ..source.local import LocalSource
from ..pg.timeline import Divergence, TimelineEntry, descends_from_current, find_divergence, \
    history_of
from ..pg.twins import (DIFFERENT, SAME, WalComparison, comparable_history, local_reader,
                        same_timeline_diverged, shared_timeline_start, source_reader)
from ..wal.reader import WalReader
from .walcopy import WalCopyRule
from ..wal.segments import SegmentDirectory
from ..wal.scan import LastCommonCheckpoint, ParallelScan, find_last_common_checkpoint

SCAN_FROM_FORK = "divergence"
SCAN_FROM_CHECKPOINT = "last_common_checkpoint"


@dataclass(frozen=True)
class ScanStart:
    """Where the changed-block scan starts, and why there."""
    lsn: int
    at: str             # SCAN_FROM_FORK or SCAN_FROM_CHECKPOINT
    reason: str

    def as_dict(self) -> dict:
        return {"lsn": format_lsn(self.lsn), "at": self.at, "reason": self.reason}


# Why a rewind is or is not needed.
SAME_TIMELINE = "same_timeline"          # nothing forked
TARGET_IS_ANCESTOR = "target_is_ancestor"  # the target stopped at or before the fork
DIVERGED = "diverged"


@dataclass
class RewindFacts:
    target: ControlFile
    source: ControlFile
    target_timeline: int
    source_timeline: int
    target_history: list
    source_history: list
    target_wal_end: int
    rewind_required: bool
    reason: str
    divergence: Optional[Divergence] = None
    last_common_checkpoint: Optional[LastCommonCheckpoint] = None
    keep_wal: set = field(default_factory=set)   # target segments replay may still need
    twin_timeline: bool = False          # a timeline number both have, with two histories
    same_timeline_verified: Optional[bool] = None   # same timeline: its WAL end was compared
    wal_compared: list = field(default_factory=list)
    fork_from_history: bool = False     # the fork is the history files' switch point
    checkpoint_walk_s: float = 0.0      # the walk back through the common WAL took
    target_is_newer: bool = False        # the target descends from the source's timeline
    # The diverged WAL's scan, started before the walk back to the last common checkpoint
    # (gather_facts' scan_ahead) and taken by plan/changes.py scan_target_changes.
    scan_ahead: Optional[ParallelScan] = field(default=None, repr=False, compare=False)

    def may_scan_from_fork(self) -> bool:
        """What scan_start() can tell before the last common checkpoint is known: the
        scan may start at the fork (it still depends on that checkpoint)."""
        return bool(self.target.full_page_writes and self.fork_from_history
                    and not self.twin_timeline)

    def drop_scan_ahead(self) -> None:
        """Stop the scan started ahead, when nothing will take it (a refusal, a clone)."""
        scan, self.scan_ahead = self.scan_ahead, None
        if scan is not None:
            scan.cancel()

    def scan_start(self) -> "ScanStart":
        """Where the changed-block scan starts: at the fork when replay from the last
        common checkpoint's redo is known to restore every page a common record changed
        (full-page writes on throughout; design.md), else at that checkpoint."""
        lcc = self.last_common_checkpoint
        if lcc.full_page_writes is None:
            why = "a resumed rewind (what the common WAL says of full_page_writes is not known)"
        elif not lcc.full_page_writes:
            why = "the last common checkpoint says full_page_writes = off"
        elif lcc.fpw_changed_at is not None:
            why = ("full_page_writes or wal_level may have changed at %s, between the last "
                   "common checkpoint and the fork" % format_lsn(lcc.fpw_changed_at))
        elif not self.target.full_page_writes:
            why = "the target's latest checkpoint says full_page_writes = off"
        elif self.twin_timeline or not self.fork_from_history:
            why = "the fork was found by comparing WAL (same or twin timeline)"
        else:
            fork = first_record_position(self.divergence.lsn, self.target.xlog_seg_size)
            if fork > lcc.lsn:
                return ScanStart(fork, SCAN_FROM_FORK, "full_page_writes on from the last "
                                 "common checkpoint to the fork: replay restores every "
                                 "page the common WAL changed")
            why = "the fork is at the last common checkpoint"
        return ScanStart(lcc.lsn, SCAN_FROM_CHECKPOINT, why)

    def replay_start(self) -> tuple:
        """(redo, timeline, checkpoint) replay of the rewound target starts from: the last
        common checkpoint -- or a standby source's older restartpoint, whose files may
        be older still."""
        lcc = self.last_common_checkpoint
        source = self.source.checkpoint_copy
        if source.redo < lcc.redo:
            return source.redo, source.timeline, self.source.checkpoint
        return lcc.redo, lcc.tli, lcc.lsn

    def wal_copy_rule(self, source_end: int) -> WalCopyRule:
        common = self.target_history[:self.divergence.target_index + 1]
        return WalCopyRule(self.target.xlog_seg_size, self.replay_start()[0],
                           self.divergence.lsn, frozenset(e.tli for e in common), source_end)

    def summary(self) -> dict:
        result = {
            "rewind_required": self.rewind_required,
            "reason": self.reason,
            "target_timeline": self.target_timeline,
            "source_timeline": self.source_timeline,
            "target_wal_end": format_lsn(self.target_wal_end),
            "divergence": self.divergence.as_dict() if self.divergence else None,
            "last_common_checkpoint": (self.last_common_checkpoint.as_dict()
                                       if self.last_common_checkpoint else None),
            "twin_timeline": self.twin_timeline,
            "same_timeline_verified": self.same_timeline_verified,
            "wal_compared": self.wal_compared,
        }
        return result


def check_compatible(target: ControlFile, source: ControlFile) -> None:
    """Refuse clusters a rewind cannot join (each check says what to do instead)."""
    if target.system_identifier != source.system_identifier:
        raise RefusedError(
            "source and target clusters are from different systems (system identifier %d vs %d)."
            % (source.system_identifier, target.system_identifier),
            hint="Point the source at the new primary of this very cluster.",
            code="different_system")
    if (target.control_version, target.catversion) != (source.control_version, source.catversion):
        raise RefusedError(
            "source (PostgreSQL %d) and target (PostgreSQL %d) are different major versions."
            % (source.major, target.major),
            hint="Both sides must run the same PostgreSQL major.", code="different_version")
    for name in ("blcksz", "xlog_blcksz", "xlog_seg_size", "relseg_size"):
        if getattr(target, name) != getattr(source, name):
            raise RefusedError("source and target differ in %s (%d vs %d)."
                               % (name, getattr(source, name), getattr(target, name)),
                               code="different_layout")
    if not target.protects_hint_bits:
        raise RefusedError(
            "the target needs data checksums or wal_log_hints = on to be rewound: without "
            "them, hint-bit changes after the fork are invisible in its WAL.",
            hint="Rebuild this node from a base backup, and enable wal_log_hints (or data "
                 "checksums) on all nodes so the next failover can be rewound.",
            code="no_hint_protection")


def target_facts(target_pgdata: str) -> ControlFile:
    path = os.path.join(target_pgdata, CONTROL_PATH)
    if not os.path.exists(path) and os.path.isdir(os.path.join(target_pgdata, STATE_DIR)):
        raise RefusedError(
            "%s holds an interrupted rewind (its pg_control is set aside until it completes)."
            % target_pgdata,
            hint="Run the same rewind again (pgops.rewind.pg_rewind) to complete it.",
            code="rewind_interrupted")
    return read_control_file(path)


def target_reader(target_pgdata: str, control: ControlFile, history: list,
                  restore=None) -> WalReader:
    seg = control.xlog_seg_size
    return WalReader(SegmentDirectory(os.path.join(target_pgdata, "pg_wal"), seg, restore),
                     control.fmt, seg, history, control.system_identifier)


def gather_facts(target_pgdata: str, target: ControlFile, source, restore=None,
                 running_wal_end: int = 0, scan_ahead=None) -> RewindFacts:
    """Decide whether `target` must be rewound to follow `source` (read only).
    `running_wal_end`: the WAL position of the target's running server (a dry run on
    it), which its pg_control (the latest checkpoint) lags behind. `scan_ahead(facts)`,
    when given, may start the diverged WAL's scan (plan/changes.py) before the walk
    back to the last common checkpoint, which then runs beside it."""
    source_control = source.control_file()
    check_compatible(target, source_control)
    source_tli = source.current_timeline(source_control)
    target_tli = target.timeline
    local = LocalSource(target_pgdata)
    read_history = comparable_history if source_tli == target_tli else history_of
    target_history = read_history(target_tli, local.read_file, "target")
    reader = target_reader(target_pgdata, target, target_history, restore)
    try:
        checkpoint_end = reader.record_at(target.checkpoint).end_lsn
        target_end = max(target_wal_end(reader, target, checkpoint_end), running_wal_end)
        facts = RewindFacts(target, source_control, target_tli, source_tli, target_history,
                            None, target_end, False, SAME_TIMELINE)
        if source_tli == target_tli:
            facts.source_history = comparable_history(source_tli, source.read_file, "source")
            if facts.source_history == target_history:
                if not _same_history_diverged(target_pgdata, facts, source, checkpoint_end):
                    return facts
        if facts.divergence is None:
            if facts.source_history is None:
                facts.source_history = history_of(source_tli, source.read_file, "source")
            facts.divergence = found = find_divergence(facts.source_history, target_history)
            facts.fork_from_history = True
            if facts.divergence.target_index > 0:
                compare = WalComparison(local_reader(target_pgdata), target_history,
                                        source_reader(source), facts.source_history,
                                        target.xlog_seg_size,
                                        min(target_end, source.wal_position(source_control)))
                facts.divergence = shared_timeline_start(facts.divergence, target_history,
                                                         compare)
                facts.wal_compared = compare.compared
                facts.fork_from_history = facts.divergence is found
        facts.twin_timeline = _twin(facts)
        if target_end <= facts.divergence.lsn:
            facts.reason = TARGET_IS_ANCESTOR
            return facts
        facts.rewind_required = True
        facts.reason = DIVERGED
        facts.target_is_newer = descends_from_current(facts.source_history, target_history,
                                                      facts.divergence)
        reader.forget_segments_read()   # keep only what the walk back to the checkpoint reads
        facts.scan_ahead = scan_ahead(facts) if scan_ahead is not None else None
        started = time.monotonic()
        try:
            facts.last_common_checkpoint = find_last_common_checkpoint(
                reader, facts.divergence.lsn, target.fmt)
        except BaseException:
            facts.drop_scan_ahead()
            raise
        facts.checkpoint_walk_s = time.monotonic() - started
        facts.keep_wal = reader.segments_read()
        return facts
    finally:
        reader.close()


def direction_problem(facts: RewindFacts) -> str:
    """Why rewinding this target would go the wrong way ('' when it would not): its
    history descends from the source's current timeline, so it is the newer primary and
    a rewind onto the source would discard everything it wrote since its promotion."""
    if not facts.target_is_newer:
        return ""
    later = [e for e in facts.target_history if e.tli > facts.source_timeline]
    return ("the target is on timeline %d, which descends from the source's current "
            "timeline %d (the target was promoted from it at %s): the target is the newer "
            "primary, and rewinding it onto the source would discard everything it wrote "
            "on timeline %s. Check which node is which."
            % (facts.target_timeline, facts.source_timeline, format_lsn(later[0].begin),
               ", ".join(str(e.tli) for e in later)))


def check_direction(facts: RewindFacts, allow_older_source: bool) -> None:
    """Refuse to rewind the newer primary onto the older one, unless asked to."""
    problem = direction_problem(facts)
    if problem and not allow_older_source:
        raise RefusedError(problem, hint="Point the source at the new primary and the target "
                           "at the old one (role: swap the old_primary and new_primary groups); "
                           "to return to the old primary on purpose, set allow_older_source: "
                           "true (role: pg_rewind_allow_older_source: true).",
                           code="wrong_direction")


def target_wal_end(reader: WalReader, target: ControlFile, checkpoint_end: int) -> int:
    """Where the target's WAL ends. Stopped cleanly, pg_control says it (the shutdown
    checkpoint, or a standby's minimum recovery point). Crashed or still running, its
    last checkpoint may be older than the fork while its WAL goes on past it: the end of
    its valid WAL from that checkpoint on, as crash recovery would find it."""
    end = max(checkpoint_end, target.min_recovery_point)
    if target.cleanly_shut_down:
        return end
    ends = [end]

    def visit(_lsn, end_lsn, *_record):
        ends[0] = max(ends[0], end_lsn)
    reader.walk(target.checkpoint, None, visit)
    return ends[0]


def _twin(facts: RewindFacts) -> bool:
    """The target's timeline has the number of one the source went through, but not
    its history."""
    source_tlis = {e.tli for e in facts.source_history}
    return any(e.tli in source_tlis for e in facts.target_history[facts.divergence.target_index
                                                                  + 1:])


def _same_history_diverged(target_pgdata, facts, source, checkpoint_end) -> bool:
    """Same timeline, identical history files: do they share the timeline? Sets
    facts.divergence and returns True when the WAL shows they do not (twins promoted
    at the same location, or a copy started as a primary on the same timeline);
    refuses a target that is ahead of the source on a shared timeline."""
    target, history = facts.target, facts.target_history
    source_end = source.wal_position(facts.source)
    compare = WalComparison(local_reader(target_pgdata), history, source_reader(source),
                            facts.source_history, target.xlog_seg_size,
                            min(facts.target_wal_end, source_end))
    facts.wal_compared = compare.compared
    whole = Divergence(history[-1].tli, 0, len(history) - 1)
    divergence = shared_timeline_start(whole, history, compare)
    if divergence is not whole:
        facts.divergence = divergence
        return True
    # Against what the source has inserted, not only written: a rewound target replays
    # to the insert position its rewind saw, which the source may not have written yet.
    source_inserted = source.wal_files_end(facts.source)
    if facts.target_wal_end > source_inserted:
        raise RefusedError(
            "the target's WAL goes further (to %s) than the source's (%s) on the same "
            "timeline %d: there is no fork to rewind to."
            % (format_lsn(facts.target_wal_end), format_lsn(source_inserted),
               facts.target_timeline),
            hint="Check that the source really is the new primary (promoted after the "
                 "failover); if it is a standby that lags, wait for it to catch up. "
                 "Otherwise rebuild the target from a base backup.",
            code="target_ahead")
    what = "latest checkpoint record"
    if compare.verdict(what, target.checkpoint, checkpoint_end) == DIFFERENT:
        facts.divergence = same_timeline_diverged(history, what)
        return True
    facts.same_timeline_verified = compare.compared[-1]["result"] == SAME
    return False


def journal_state(facts: RewindFacts) -> dict:
    """What a rewind must remember to be completed later from its journal."""
    lcc = facts.last_common_checkpoint
    return {
        "divergence": {"tli": facts.divergence.tli, "lsn": facts.divergence.lsn},
        "last_common_checkpoint": {"lsn": lcc.lsn, "tli": lcc.tli, "redo": lcc.redo},
        "keep_wal": sorted(facts.keep_wal),
        "target_history": [[e.tli, e.begin, e.end] for e in facts.target_history],
        "target_wal_end": facts.target_wal_end,
        "source_system_identifier": str(facts.source.system_identifier),
    }


def facts_from_journal(state: dict, target: ControlFile, source) -> RewindFacts:
    """The facts of an interrupted rewind: what the target did comes from the journal
    (its WAL may be gone), what the source is now is asked again."""
    source_control = source.control_file()
    check_compatible(target, source_control)
    source_tli = source.current_timeline(source_control)
    source_history = history_of(source_tli, source.read_file, "source")
    target_history = [TimelineEntry(*entry) for entry in state["target_history"]]
    divergence = _journal_divergence(state["divergence"], find_divergence(source_history,
                                                                          target_history),
                                     source_history, target_history)
    saved = state["divergence"]
    if (divergence.tli, divergence.lsn) != (saved["tli"], saved["lsn"]):
        raise RefusedError(
            "the source's history no longer forks from the target at %s on timeline %d, "
            "where the interrupted rewind started." % (format_lsn(saved["lsn"]), saved["tli"]),
            code="source_history_changed")
    return RewindFacts(target, source_control, target.timeline, source_tli, target_history,
                       source_history, state["target_wal_end"], True, DIVERGED, divergence,
                       LastCommonCheckpoint(**state["last_common_checkpoint"]),
                       set(state["keep_wal"]))


def _journal_divergence(saved: dict, found: Divergence, source_history: list,
                        target_history: list) -> Divergence:
    """The interrupted rewind's fork, if the source's history still shares everything
    before it: the WAL evidence of twin timelines (pg/twins.py) may have put it earlier
    than the history files alone do, and the target's WAL it came from may be gone."""
    for index in range(found.target_index + 1):
        entry = target_history[index]
        if entry.tli != saved["tli"] or source_history[index].begin != entry.begin:
            continue
        within = entry.begin <= saved["lsn"] and (entry.end is None or saved["lsn"] <= entry.end)
        if within and (found.lsn == 0 or saved["lsn"] <= found.lsn):
            return Divergence(entry.tli, saved["lsn"], index)
    return found
