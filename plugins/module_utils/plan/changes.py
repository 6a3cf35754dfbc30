# -*- coding: utf-8 -*-
# Copyright: pgops.rewind developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the target changed after the fork: its WAL read from where facts.scan_start()
says (the fork, or the last common checkpoint) to its end, in one process or split over
several -- started ahead, beside the walk back to that checkpoint, when it can be --
or its WAL summaries (17+) where they cover a scan from the checkpoint.
"""

from __future__ import annotations

from ..pg.lsn import first_record_position
from ..wal.scan import ParallelScan, TargetChanges, scan_changes, scan_changes_parallel
from ..wal.summary import changes_from_summaries
from .facts import RewindFacts, target_reader

PARALLEL_SCAN_MIN_SEGMENTS = 8


def diverged_scan_ahead(target_pgdata: str, facts: RewindFacts, restore, workers: int):
    """The scan of the diverged WAL, from the fork to the target's end, started now in
    `workers` processes (None when it would not run in parallel, or may have to start
    at the last common checkpoint). The walk back to that checkpoint reads the common
    WAL at disk speed while these processes read the diverged WAL at CPU speed: after
    a real failover both take seconds, and they overlap."""
    seg = facts.target.xlog_seg_size
    fork = first_record_position(facts.divergence.lsn, seg)
    end = facts.target_wal_end
    if workers < 2 or restore is not None or not facts.may_scan_from_fork() or \
            (end - fork) // seg < PARALLEL_SCAN_MIN_SEGMENTS:
        return None
    scan = ParallelScan(_target_readers(target_pgdata, facts, restore), fork, end,
                        facts.target.fmt, facts.target.relseg_size, workers, count_from=fork)
    return scan if scan.split else None


def _target_readers(target_pgdata: str, facts: RewindFacts, restore):
    """A function giving a new reader of the target's WAL (one per scan process)."""
    def open_reader():
        return target_reader(target_pgdata, facts.target, facts.target_history, restore)
    return open_reader


def scan_target_changes(target_pgdata: str, facts: RewindFacts, restore=None,
                        workers: int = 1, progress=None,
                        use_summaries: bool = True, from_fork: bool = True) -> TargetChanges:
    """Read the target's WAL from facts.scan_start() -- the fork, or the last common
    checkpoint -- to its end (split over `workers` processes when there is enough of
    it); or, with use_summaries and a scan from the checkpoint, its WAL summaries where
    they cover that range (walsummary.changes_source tells which), the WAL after the
    fork being read for the discarded-work count. from_fork=False: always from the
    checkpoint (as PostgreSQL's pg_rewind; tests compare both)."""
    ahead, facts.scan_ahead = facts.scan_ahead, None
    try:
        begin = facts.scan_start() if from_fork else None
        start = begin.lsn if begin is not None else facts.last_common_checkpoint.lsn
        end = facts.target_wal_end
        seg = facts.target.xlog_seg_size
        # what the target did from there is discarded (the first record after the switch
        # point)
        fork = first_record_position(facts.divergence.lsn, seg)
        open_reader = _target_readers(target_pgdata, facts, restore)
        changes = None
        if ahead is not None and (ahead.start, ahead.end) == (start, end):
            changes = ahead.collect(progress)       # started with the facts
            changes.scanned_ahead = True
        elif ahead is not None:
            ahead.cancel()          # the scan starts elsewhere: its CPU is needed now
        if changes is None and use_summaries and start < fork:
            changes = changes_from_summaries(target_pgdata, facts.target, facts.target_history,
                                             start, end, open_reader, count_from=fork)
        if changes is None:
            changes = _scan(open_reader, start, end, facts, workers, progress, restore, fork,
                            seg)
        changes.common_skipped = start - facts.last_common_checkpoint.lsn
        return changes
    finally:
        if ahead is not None:
            ahead.cancel()


def _scan(open_reader, start, end, facts, workers, progress, restore, fork, seg):
    if workers > 1 and restore is None and (end - start) // seg >= PARALLEL_SCAN_MIN_SEGMENTS:
        return scan_changes_parallel(open_reader, start, end, facts.target.fmt,
                                     facts.target.relseg_size, workers, count_from=fork,
                                     progress=progress)
    reader = open_reader()
    if progress is not None:
        reader.on_chunk = lambda lsn: progress.update(max(0, lsn - start))
    try:
        return scan_changes(reader, start, end, facts.target.fmt, facts.target.relseg_size,
                            count_from=fork)
    finally:
        reader.close()
