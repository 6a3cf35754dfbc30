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

from dataclasses import dataclass, field

from .blockmap import ChangedBlocks
from .errors import WalError
from .lsn import first_record_position, format_lsn
from .versions import MajorFormat
from .walrecord import (MAIN_FORKNUM, checkpoint_of, decode_record, file_event, is_checkpoint,
                        modifies_files_unknowably)


@dataclass(frozen=True)
class LastCommonCheckpoint:
    lsn: int          # the checkpoint record
    tli: int          # its timeline
    redo: int         # where replay starts

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

    @property
    def wal_bytes(self) -> int:
        return self.end - self.start


def find_last_common_checkpoint(reader, divergence_lsn: int, fmt: MajorFormat):
    """Walk back through xl_prev from the fork to the newest checkpoint record before it."""
    fork = first_record_position(divergence_lsn, reader.seg_size)
    lsn = fork
    while True:
        try:
            raw = reader.record_at(lsn)
        except WalError as exc:
            raise type(exc)(
                "could not find the last common checkpoint before the fork at %s: %s"
                % (format_lsn(divergence_lsn), exc.message), **exc.details)
        if lsn < fork and is_checkpoint(raw):
            checkpoint = checkpoint_of(decode_record(raw, fmt), fmt)
            return LastCommonCheckpoint(lsn, checkpoint.timeline, checkpoint.redo)
        if raw.prev == 0:
            raise WalError("reached the start of the WAL before finding a checkpoint record "
                           "before the fork at %s." % format_lsn(divergence_lsn),
                           code="no_common_checkpoint")
        lsn = raw.prev


def scan_changes(reader, start: int, end: int, fmt: MajorFormat,
                 relseg_size: int) -> TargetChanges:
    """Every main-fork block the records from `start` up to `end` touched."""
    changes = TargetChanges(ChangedBlocks(relseg_size), start, end)
    add = changes.blocks.add
    events = changes.file_events
    count = 0
    for raw in reader.records(start, end):
        count += 1
        record = decode_record(raw, fmt)
        if record.info & 0x01:   # XLR_SPECIAL_REL_UPDATE
            if modifies_files_unknowably(record, fmt):
                raise WalError(
                    "WAL record at %s (resource manager %s, info %02X) changes relation "
                    "files in a way this rewind does not know." % (
                        format_lsn(record.lsn), record.rmgr_name, record.info),
                    hint="A rewind cannot be done safely; rebuild the node from a base backup.",
                    code="wal_unknown_special_record")
        if record.rmid in (2, 4, 7):   # Storage, Database, RelMap
            event = file_event(record, fmt)
            if event is not None:
                events[event.kind] = events.get(event.kind, 0) + 1
        for block in record.blocks:
            if block.fork == MAIN_FORKNUM:
                add(block.spc, block.db, block.rel, block.blkno)
    changes.records = count
    return changes
