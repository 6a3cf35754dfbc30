# -*- coding: utf-8 -*-
# Copyright: pgops.rewind developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the target did after the fork, read from its WAL.

Two walks over the target's WAL: backwards from the fork to the last checkpoint
both histories share (replay will restart from its redo point), then forwards
from that checkpoint to the target's end of WAL, collecting every block of a
relation's main fork that a record touched, plus the records that create, drop
or truncate whole files.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import signal
from dataclasses import dataclass, field
from typing import Optional

from ..runtime import faults
from ..pg.blockmap import ChangedBlocks
from .discarded import COUNTED_RMGRS, DiscardedWork, count_record, counting_reader
from ..errors import MissingWalError, RewindError, ScanProcessError, WalError
from ..pg.lsn import first_record_position, format_lsn
from ..pg.versions import MajorFormat
from .checkpoint_search import search_last_checkpoint
from .reader import RawRecord
from .record import (BKPBLOCK_FORK_MASK, MAIN_FORKNUM, RM_DBASE_ID, RM_RELMAP_ID, RM_SMGR_ID,
                     XLR_SPECIAL_REL_UPDATE, checkpoint_of, decode_record, file_event,
                     changes_full_page_writes, fragment_reader, is_checkpoint,
                     modifies_files_unknowably)


@dataclass(frozen=True)
class LastCommonCheckpoint:
    lsn: int          # the checkpoint record
    tli: int          # its timeline
    redo: int         # where replay starts
    # What the walk back from the fork saw of full-page writes (None: not known, as
    # after a resumed run): the checkpoint record's fullPageWrites, and the first record
    # between it and the fork that may have changed them (FPW_CHANGE, PARAMETER_CHANGE).
    full_page_writes: Optional[bool] = None
    fpw_changed_at: Optional[int] = None
    found: str = "walk"     # how: "search" (checkpoint_search.py) or "walk" back

    def as_dict(self) -> dict:
        return {"lsn": format_lsn(self.lsn), "timeline": self.tli, "redo": format_lsn(self.redo)}


@dataclass
class TargetChanges:
    """Everything the forward scan learned."""

    blocks: ChangedBlocks
    start: int
    end: int
    records: int = 0
    file_events: dict = field(default_factory=dict)   # kind -> count
    first_prev: int = 0      # prev-link of the first record read (to chain parts of a scan)
    last_lsn: int = 0        # the last record read
    discarded: Optional[DiscardedWork] = None   # the old primary's work after the fork
    processes: int = 1       # that read the WAL (scan_changes_parallel)
    common_skipped: int = 0  # WAL bytes from the last common checkpoint to the scan's start
    scanned_ahead: bool = False  # during the walk back to that checkpoint (plan/facts.py)

    @property
    def wal_bytes(self) -> int:
        return self.end - self.start


def find_last_common_checkpoint(reader, divergence_lsn: int, fmt: MajorFormat):
    """The newest checkpoint record before the fork, and the first record between the
    two that may change whether pages get full-page images (design.md: where the scan
    may start at the fork).

    Searched for in the WAL's bytes (wal/checkpoint_search.py), which reads each common
    segment once at disk speed; when the search cannot tell, walked back to."""
    fork = first_record_position(divergence_lsn, reader.seg_size)
    found = search_last_checkpoint(reader, fork, fmt)
    if found is not None:
        checkpoint = checkpoint_of(decode_record(reader.record_at(found.lsn), fmt), fmt)
        return LastCommonCheckpoint(found.lsn, checkpoint.timeline, checkpoint.redo,
                                    checkpoint.full_page_writes, found.fpw_changed_at,
                                    found="search")
    return walk_back_to_checkpoint(reader, fork, divergence_lsn, fmt)


def walk_back_to_checkpoint(reader, fork: int, divergence_lsn: int, fmt: MajorFormat):
    """Walk back through xl_prev from the fork to the newest checkpoint record before it,
    noting the records that may change full-page writes on the way."""
    lsn = fork
    fpw_changed_at = None
    while True:
        try:
            raw = reader.record_at(lsn)
        except WalError as exc:
            raise type(exc)(
                "could not find the last common checkpoint before the fork at %s: %s"
                % (format_lsn(divergence_lsn), exc.message), **exc.details)
        if lsn < fork and is_checkpoint(raw):
            checkpoint = checkpoint_of(decode_record(raw, fmt), fmt)
            return LastCommonCheckpoint(lsn, checkpoint.timeline, checkpoint.redo,
                                        checkpoint.full_page_writes, fpw_changed_at)
        if lsn < fork and changes_full_page_writes(raw):
            fpw_changed_at = lsn            # walking back: the earliest one is kept
        if raw.prev == 0:
            raise WalError("reached the start of the WAL before finding a checkpoint record "
                           "before the fork at %s." % format_lsn(divergence_lsn),
                           code="no_common_checkpoint")
        lsn = raw.prev


def scan_changes(reader, start: int, end, fmt: MajorFormat, relseg_size: int,
                 limit=None, count_from: Optional[int] = None,
                 part: bool = False) -> TargetChanges:
    """Every main-fork block the records from `start` up to `end` touched.

    The hot loop of a rewind: block references come from wal/record.py's fragment
    reader, the one decoder, straight from the record bytes; the rare records that
    change files beyond their blocks are decoded whole. Blocks seen a moment ago are
    not added again: hot pages are touched by record after record. With `count_from`
    (the fork), the same pass counts what the target did from there (wal/discarded.py);
    `part`: this is one part of a parallel scan, merged later.
    """
    changes = TargetChanges(ChangedBlocks(relseg_size), start, end)
    work = changes.discarded = DiscardedWork(count_from, part) if count_from is not None \
        else None
    add = changes.blocks.add
    events = changes.file_events
    recent = set()

    def found(fork_flags, spc, db, rel, blkno, _block_id, _data_len, _image):
        if not fork_flags & BKPBLOCK_FORK_MASK:
            if len(recent) > RECENT_BLOCKS:
                recent.clear()
            recent.add((rel, blkno, db, spc))
            add(spc, db, rel, blkno)

    def whole(lsn, end_lsn, buf, off, tot_len, xid, prev, info, rmid):
        _whole_record(RawRecord.visited(lsn, end_lsn, buf, off, tot_len, xid, prev, info, rmid),
                      fmt, add, events, work)

    read = fragment_reader(fmt, found, known=recent)
    routes = None
    if work is not None:        # the counted resource managers' records also go to the count
        counting = counting_reader(fmt, read, found, work, known=recent)
        routes = dict.fromkeys(COUNTED_RMGRS, counting)
    reader.walk(start, end, read, limit, whole=(whole, XLR_SPECIAL_REL_UPDATE, _FILE_RMGRS),
                routes=routes)
    last = reader.last_record
    if limit is not None and not reader.reached_limit():
        reason = reader.end_of_wal.reason if reader.end_of_wal else "unknown"
        raise WalError("the target's WAL ends at %s, before %s where this part of the scan "
                       "ends: %s." % (format_lsn(last or start), format_lsn(limit), reason))
    changes.records = reader.records_walked
    changes.first_prev, changes.last_lsn = reader.first_prev or 0, last or 0
    return changes


_FILE_RMGRS = frozenset((RM_SMGR_ID, RM_DBASE_ID, RM_RELMAP_ID))
RECENT_BLOCKS = 8192     # blocks remembered as just added (a set, cleared when full)


def _whole_record(raw, fmt, add, events, work=None):
    """The slow path: records that change files beyond their block references."""
    record = decode_record(raw, fmt)
    if work is not None and record.lsn >= work.from_lsn and record.rmid in COUNTED_RMGRS:
        first = record.blocks[0] if record.blocks else None
        count_record(work, record.rmid, record.info, record.xid,
                     (first.spc, first.db, first.rel) if first else None, record.main_data)
    if record.info & XLR_SPECIAL_REL_UPDATE and modifies_files_unknowably(record, fmt):
        raise WalError(
            "WAL record at %s (resource manager %s, info %02X) changes relation files in a "
            "way this rewind does not know." % (format_lsn(record.lsn), record.rmgr_name,
                                                record.info),
            hint="A rewind cannot be done safely; rebuild the node from a base backup.",
            code="wal_unknown_special_record")
    event = file_event(record, fmt)
    if event is not None:
        events[event.kind] = events.get(event.kind, 0) + 1
        if work is not None:
            work.file_event(event)
    for block in record.blocks:
        if block.fork == MAIN_FORKNUM:
            add(block.spc, block.db, block.rel, block.blkno)


PARTS_PER_WORKER = 4        # parts handed out one at a time, so the workers finish together
MIN_PART_SEGMENTS = 2


def part_bounds(start: int, end: int, seg_size: int, parts: int) -> list:
    """LSNs splitting [start, end) at segment boundaries into up to `parts` parts."""
    first_seg, last_seg = start // seg_size + 1, (end - 1) // seg_size
    parts = max(1, min(parts, (last_seg - first_seg + 1) // MIN_PART_SEGMENTS))
    bounds = [start] + [((first_seg + (last_seg - first_seg + 1) * k // parts) * seg_size)
                        for k in range(1, parts)] + [end]
    return sorted(set(bounds))


def scan_changes_parallel(open_reader, start: int, end: int, fmt: MajorFormat,
                          relseg_size: int, workers: int,
                          count_from: Optional[int] = None, progress=None) -> TargetChanges:
    """scan_changes split at segment boundaries into parts scanned by `workers` processes
    (ParallelScan, started and collected at once)."""
    scan = ParallelScan(open_reader, start, end, fmt, relseg_size, workers, count_from)
    try:
        return scan.collect(progress)
    finally:
        scan.cancel()


class ParallelScan:
    """scan_changes split at segment boundaries into parts scanned by `workers` processes,
    started when made and collected later: the rewind starts the diverged WAL's scan
    while it still searches the common WAL for the last common checkpoint.

    Every segment's page headers tell where its first record starts, so each part is
    read on its own; the parts are then checked to chain (the first record of each
    part points back to the last record of the one before) and their block maps
    merged. The WAL after a checkpoint is not uniform (full-page images first, then
    ever more small records, which cost more per byte), so there are several parts per
    worker, taken in turn by whichever worker is free. `open_reader()` gives each part
    a reader of its own. Too little WAL to split: `split` is False and collect() scans
    it in this process."""

    def __init__(self, open_reader, start: int, end: int, fmt: MajorFormat,
                 relseg_size: int, workers: int, count_from: Optional[int] = None):
        self.open_reader, self.start, self.end = open_reader, start, end
        self.fmt, self.relseg_size, self.count_from = fmt, relseg_size, count_from
        reader = open_reader()
        seg_size = reader.seg_size
        reader.close()
        self.bounds = part_bounds(start, end, seg_size, workers * PARTS_PER_WORKER)
        self.split = len(self.bounds) >= 3
        self.channels = {}
        self.next_part = None
        self.processes = min(workers, len(self.bounds) - 1)
        if not self.split:
            return
        context = multiprocessing.get_context("fork")
        # The next part to take, in memory shared with the workers. Held here while they
        # run: Process.start() drops its arguments, and a freed counter's place would be
        # handed to the next scan's while these workers still count in it.
        self.next_part = context.Value("i", 0)
        for _unused in range(self.processes):
            receive, send = context.Pipe(duplex=False)
            process = context.Process(target=_scan_parts, daemon=True, args=(
                send, self.next_part, open_reader, self.bounds, fmt, relseg_size, count_from))
            process.start()
            send.close()
            self.channels[receive] = process

    def cancel(self) -> None:
        """Stop the workers still running (the scan is not needed, or failed)."""
        channels, self.channels = self.channels, {}
        for process in channels.values():
            process.terminate()
            process.join()
        for receive in channels:
            receive.close()
        self.next_part = None       # no worker counts in it any more

    def collect(self, progress=None) -> TargetChanges:
        """The scan's TargetChanges once every part is in; `progress` hears how much of
        the range is done."""
        if not self.split:
            reader = self.open_reader()
            try:
                return scan_changes(reader, self.start, self.end, self.fmt, self.relseg_size,
                                    count_from=self.count_from)
            finally:
                reader.close()
        bounds, channels = self.bounds, self.channels
        parts, failure = {}, None
        try:
            while channels and failure is None:
                for receive in multiprocessing.connection.wait(list(channels)):
                    try:
                        message = receive.recv()
                    except EOFError:        # it ended without a word: killed
                        channels[receive].join()
                        message = ("error", "ScanProcessError", ScanProcessError.code,
                                   _died(channels[receive].exitcode), None)
                    if message[0] == "ok":
                        parts[message[1]] = message[2:]
                        if progress is not None:
                            progress.update(sum(bounds[i + 1] - bounds[i] for i in parts))
                        continue
                    if message[0] == "error" and failure is None:
                        failure = message
                    channels.pop(receive).join()
                    receive.close()
        finally:
            self.cancel()           # after a failure: the rest is not needed
        if failure is None and len(parts) != len(bounds) - 1:
            failure = ("error", "ScanProcessError", ScanProcessError.code, "the WAL scan "
                       "processes ended with %d of its %d parts scanned"
                       % (len(parts), len(bounds) - 1), None)
        if failure is not None:
            _kind, name, code, message, hint = failure
            raise _RAISED_AS.get(name, RewindError)(message, hint=hint or None, code=code)
        return self._merged(parts)

    def _merged(self, parts) -> TargetChanges:
        changes = TargetChanges(ChangedBlocks(self.relseg_size), self.start, self.end,
                                processes=self.processes)
        if self.count_from is not None:
            changes.discarded = DiscardedWork(self.count_from)
        previous = None
        for index in range(len(self.bounds) - 1):
            blocks, records, events, first_prev, last_lsn, discarded = parts[index]
            if previous is not None and records and first_prev != previous:
                raise WalError("the target's WAL does not chain across segments: a record "
                               "after %s points back to %s." % (format_lsn(previous),
                                                                format_lsn(first_prev)))
            changes.blocks.merge(ChangedBlocks.from_bytes(blocks))
            changes.records += records
            if discarded is not None:
                changes.discarded.merge(discarded)
            for kind, number in events.items():
                changes.file_events[kind] = changes.file_events.get(kind, 0) + number
            previous = last_lsn or previous
        return changes


# A worker's error, raised again in the collecting process: same class, same code.
_RAISED_AS = {cls.__name__: cls for cls in (WalError, MissingWalError, ScanProcessError)}


def _died(exitcode) -> str:
    """How a scan worker that sent no result ended (multiprocessing's exit code)."""
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = "signal %d" % -exitcode
        return "a WAL scan process was killed by %s before it sent its part of the scan" % name
    return "a WAL scan process exited (code %s) before it sent its part of the scan" % exitcode


def _scan_parts(channel, next_part, open_reader, bounds, fmt, relseg_size, count_from=None):
    """A worker: scan the next part nobody has taken until none is left."""
    try:
        while True:
            with next_part.get_lock():
                index = next_part.value
                next_part.value += 1
            if index >= len(bounds) - 1:
                break
            faults.moment("wal scan part")
            first, last = index == 0, index == len(bounds) - 2
            reader = open_reader()
            try:
                part_start = bounds[index] if first else reader.first_record_from(bounds[index])
                part = scan_changes(reader, part_start, bounds[index + 1] if last else None,
                                    fmt, relseg_size, limit=None if last else bounds[index + 1],
                                    count_from=count_from, part=True)
            finally:
                reader.close()
            channel.send(("ok", index, part.blocks.to_bytes(), part.records, part.file_events,
                          part.first_prev, part.last_lsn,
                          part.discarded.state() if part.discarded is not None else None))
        channel.send(("done",))
    except RewindError as exc:      # its code crosses the pipe: callers decide on it
        channel.send(("error", type(exc).__name__, exc.code, exc.message, exc.hint))
    except Exception as exc:        # a bug, said as one (not as a killed process)
        channel.send(("error", "RewindError", "internal_error", "a WAL scan process failed: "
                      "%s: %s" % (type(exc).__name__, exc), None))
    finally:
        channel.close()
