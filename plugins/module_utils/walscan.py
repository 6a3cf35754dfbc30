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
import struct
from dataclasses import dataclass, field

from . import faults
from .blockmap import ChangedBlocks
from .errors import MissingWalError, RewindError, WalError
from .lsn import first_record_position, format_lsn
from .versions import MajorFormat
from .wal import RawRecord
from .walrecord import (_IMAGE_HEAD, _RELFILE_BLOCK, _U16, _U32,
                        BKPBLOCK_FORK_MASK, BKPBLOCK_HAS_IMAGE, BKPBLOCK_SAME_REL, MAIN_FORKNUM,
                        RM_DBASE_ID, RM_RELMAP_ID, RM_SMGR_ID, XLR_BLOCK_ID_DATA_LONG,
                        XLR_BLOCK_ID_DATA_SHORT, XLR_BLOCK_ID_ORIGIN, XLR_BLOCK_ID_TOPLEVEL_XID,
                        XLR_MAX_BLOCK_ID, XLR_SPECIAL_REL_UPDATE, checkpoint_of, decode_record,
                        file_event, is_checkpoint, modifies_files_unknowably)


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
    first_prev: int = 0      # prev-link of the first record read (to chain parts of a scan)
    last_lsn: int = 0        # the last record read

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


def scan_changes(reader, start: int, end, fmt: MajorFormat, relseg_size: int,
                 limit=None) -> TargetChanges:
    """Every main-fork block the records from `start` up to `end` touched.

    The hot loop of a rewind: block references are read straight from the record
    bytes here (decode_record does the same, slower, for the rare records that need
    a full decode); a record whose fragments do not add up is decoded fully, which
    reports the precise error. Blocks seen a moment ago are not added again: hot
    pages are touched by record after record.
    """
    changes = TargetChanges(ChangedBlocks(relseg_size), start, end)
    add = changes.blocks.add
    events = changes.file_events
    toplevel_ok = fmt.toplevel_xid_block
    has_hole, compressed = fmt.image.has_hole, fmt.image.compressed_mask
    u32 = _U32.unpack_from
    block_head, image_head, rel_block = (_U16.unpack_from, _IMAGE_HEAD.unpack_from,
                                         _RELFILE_BLOCK.unpack_from)
    plain_block = _PLAIN_BLOCK.unpack_from
    one_block = _ONE_BLOCK.unpack_from
    recent = set()
    count = 0

    first_prev = last = None

    def visit(lsn, end_lsn, buf, off, tot_len, xid, prev, info, rmid):
        nonlocal count, first_prev, last
        count += 1
        last = lsn
        if first_prev is None:
            first_prev = prev
        if info & XLR_SPECIAL_REL_UPDATE or rmid in _FILE_RMGRS:
            _whole_record(RawRecord(lsn, end_lsn, memoryview(buf)[off:off + tot_len], tot_len,
                                    xid, prev, info, rmid), fmt, add, events)
            return
        pos = off + 24
        first = buf[pos]
        if first == XLR_BLOCK_ID_DATA_SHORT:
            if buf[pos + 1] + 26 == tot_len:
                return                              # main data only (commits and the like)
        elif not first and tot_len >= 46:
            # Most records are one main-fork block without an image plus short main data.
            _bid, flags, data_len, spc, db, rel, blkno, next_id, main_len = one_block(buf, pos)
            if not flags & 0x9F and next_id == XLR_BLOCK_ID_DATA_SHORT \
                    and 46 + data_len + main_len == tot_len:
                key = (rel, blkno, db, spc)
                if key not in recent:
                    if len(recent) > 8192:
                        recent.clear()
                    recent.add(key)
                    add(spc, db, rel, blkno)
                return
        limit = off + tot_len
        datatotal = 0
        spc = None
        while limit - pos > datatotal:
            block_id = buf[pos]
            if block_id <= XLR_MAX_BLOCK_ID:
                fork_flags = buf[pos + 1]
                if not fork_flags & 0x90:           # no image, own relation: the common case
                    _bid, _ff, data_len, spc, db, rel, blkno = plain_block(buf, pos)
                    pos += 20
                    datatotal += data_len
                else:
                    data_len = block_head(buf, pos + 2)[0]
                    pos += 4
                    datatotal += data_len
                    if fork_flags & BKPBLOCK_HAS_IMAGE:
                        image_len, _hole, bimg_info = image_head(buf, pos)
                        pos += 7 if bimg_info & compressed and bimg_info & has_hole else 5
                        datatotal += image_len
                    if fork_flags & BKPBLOCK_SAME_REL:
                        if spc is None:
                            datatotal = -1
                            break
                        blkno = u32(buf, pos)[0]
                        pos += 4
                    else:
                        spc, db, rel, blkno = rel_block(buf, pos)
                        pos += 16
                if not fork_flags & BKPBLOCK_FORK_MASK:
                    key = (rel, blkno, db, spc)
                    if key not in recent:
                        if len(recent) > 8192:
                            recent.clear()
                        recent.add(key)
                        add(spc, db, rel, blkno)
            elif block_id == XLR_BLOCK_ID_DATA_SHORT:
                datatotal += buf[pos + 1]
                pos += 2
                break
            elif block_id == XLR_BLOCK_ID_DATA_LONG:
                datatotal += u32(buf, pos + 1)[0]
                pos += 5
                break
            elif block_id == XLR_BLOCK_ID_ORIGIN:
                pos += 3
            elif block_id == XLR_BLOCK_ID_TOPLEVEL_XID and toplevel_ok:
                pos += 5
            else:
                datatotal = -1      # invalid: let the full decoder say what is wrong
                break
        if limit - pos != datatotal:
            decode_record(RawRecord(lsn, end_lsn, memoryview(buf)[off:off + tot_len], tot_len,
                                    xid, prev, info, rmid), fmt)
            raise WalError("invalid WAL record at %s." % format_lsn(lsn), code="wal_corrupt")

    reader.walk(start, end, visit, limit)
    if limit is not None and not reader.reached_limit():
        reason = reader.end_of_wal.reason if reader.end_of_wal else "unknown"
        raise WalError("the target's WAL ends at %s, before %s where this part of the scan "
                       "ends: %s." % (format_lsn(last or start), format_lsn(limit), reason))
    changes.records = count
    changes.first_prev, changes.last_lsn = first_prev or 0, last or 0
    return changes


_FILE_RMGRS = frozenset((RM_SMGR_ID, RM_DBASE_ID, RM_RELMAP_ID))
# block id, fork flags, data length, tablespace, database, relation, block number
_PLAIN_BLOCK = struct.Struct("<BBHIIII")
# ... followed by the short main-data header: id 255, length
_ONE_BLOCK = struct.Struct("<BBHIIIIBB")


def _whole_record(raw, fmt, add, events):
    """The slow path: records that change files beyond their block references."""
    record = decode_record(raw, fmt)
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
    for block in record.blocks:
        if block.fork == MAIN_FORKNUM:
            add(block.spc, block.db, block.rel, block.blkno)


def scan_changes_parallel(open_reader, start: int, end: int, fmt: MajorFormat,
                          relseg_size: int, workers: int) -> TargetChanges:
    """scan_changes split at segment boundaries over `workers` processes.

    Every segment's page headers tell where its first record starts, so each part is
    read on its own; the parts are then checked to chain (the first record of each
    part points back to the last record of the one before) and their block maps
    merged. `open_reader()` gives each process a reader of its own."""
    seg_size = open_reader().seg_size
    first_seg, last_seg = start // seg_size + 1, (end - 1) // seg_size
    bounds = [start] + [((first_seg + (last_seg - first_seg + 1) * k // workers) * seg_size)
                        for k in range(1, workers)] + [end]
    bounds = sorted(set(bounds))
    if len(bounds) < 3:
        reader = open_reader()
        try:
            return scan_changes(reader, start, end, fmt, relseg_size)
        finally:
            reader.close()
    context = multiprocessing.get_context("fork")
    channels = []
    for index in range(len(bounds) - 1):
        receive, send = context.Pipe(duplex=False)
        process = context.Process(target=_scan_part, daemon=True, args=(
            send, open_reader, bounds[index], bounds[index + 1], index == 0,
            index == len(bounds) - 2, fmt, relseg_size))
        process.start()
        send.close()
        channels.append((process, receive))
    parts = []
    for process, receive in channels:
        try:
            parts.append(receive.recv())
        except EOFError:
            parts.append(("error", "WalError", "a WAL scan process died", {}))
        process.join()
    for part in parts:
        if part[0] == "error":
            _kind, name, message, hint = part
            cls = {"MissingWalError": MissingWalError}.get(name, WalError)
            raise cls(message, hint=hint or None)
    changes = TargetChanges(ChangedBlocks(relseg_size), start, end)
    previous = None
    for _ok, blocks, records, events, first_prev, last_lsn in parts:
        if previous is not None and records and first_prev != previous:
            raise WalError("the target's WAL does not chain across segments: a record after "
                           "%s points back to %s." % (format_lsn(previous),
                                                      format_lsn(first_prev)))
        changes.blocks.merge(ChangedBlocks.from_bytes(blocks))
        changes.records += records
        for kind, number in events.items():
            changes.file_events[kind] = changes.file_events.get(kind, 0) + number
        previous = last_lsn or previous
    return changes


def _scan_part(channel, open_reader, part_start, part_end, first, last, fmt, relseg_size):
    faults.moment("wal scan part")
    try:
        reader = open_reader()
        start = part_start if first else reader.first_record_from(part_start)
        part = scan_changes(reader, start, part_end if last else None, fmt, relseg_size,
                            limit=None if last else part_end)
        channel.send(("ok", part.blocks.to_bytes(), part.records, part.file_events,
                      part.first_prev, part.last_lsn))
    except RewindError as exc:
        channel.send(("error", type(exc).__name__, exc.message, exc.hint))
    finally:
        channel.close()
