# -*- coding: utf-8 -*-
# Copyright: pgops.rewind developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a rewind throws away: the old primary's work after the fork, counted from the
same WAL records the changed-block scan reads (one pass, two visitors).

Per transaction: commits, aborts, prepares, the xid range and the commit times. Per
relation: tuples inserted, updated (HOT included) and deleted by transactions that
committed or were prepared -- work of aborted transactions was never real -- and
whether the file was created, truncated or dropped. Databases created or dropped.
The counts are plain values; names are resolved afterwards through the source's
catalog (`resolve_names`), where the relation still has the same relfilenode.
"""

from __future__ import annotations

import struct
from array import array
from datetime import datetime, timedelta, timezone
from typing import Optional

from .record import BKPBLOCK_FORK_MASK, RM_XACT_ID, XLOG_XACT_OPMASK, first_relation_reader, \
    fragment_reader

# Resource managers counted (rmgrlist.h) and their opcodes (heapam_xlog.h, xact.h).
RM_HEAP2_ID = 9
RM_HEAP_ID = 10
HEAP_OPMASK = 0x70
HEAP_INSERT, HEAP_DELETE, HEAP_UPDATE, HEAP_HOT_UPDATE = 0x00, 0x10, 0x20, 0x40
HEAP2_MULTI_INSERT = 0x50
XACT_COMMIT, XACT_PREPARE, XACT_ABORT = 0x00, 0x10, 0x20
XACT_COMMIT_PREPARED, XACT_ABORT_PREPARED = 0x30, 0x40
XACT_HAS_INFO = 0x80
XINFO_HAS_DBINFO, XINFO_HAS_SUBXACTS, XINFO_HAS_RELFILES = 1 << 0, 1 << 1, 1 << 2
COUNTED_RMGRS = frozenset((RM_HEAP_ID, RM_HEAP2_ID, RM_XACT_ID))
_TUPLE_OPS = {HEAP_INSERT: 0, HEAP_UPDATE: 1, HEAP_HOT_UPDATE: 1, HEAP_DELETE: 2}
_POSTGRES_EPOCH = datetime(2000, 1, 1, tzinfo=timezone.utc)
_I32, _U32, _I64 = struct.Struct("<i"), struct.Struct("<I"), struct.Struct("<q")


class DiscardedWork:
    """Counters fed record by record from `from_lsn` (the fork) on."""

    def __init__(self, from_lsn: int, part: bool = False):
        self.from_lsn = from_lsn
        self.committed = self.aborted = self.prepared = 0
        self.xid_min = self.xid_max = None
        self.first_commit = self.last_commit = None      # microseconds since 2000-01-01
        self.pending = {}       # xid -> {relation: [inserted, updated, deleted]}
        # In a part of a parallel scan, every xid finished here: the parts before may
        # hold work of it that only this part can settle (4 bytes a transaction).
        self.part = part
        self.finished_kept, self.finished_dropped = array("I"), array("I")
        self.tuples = {}        # relation (spc, db, rel) -> [inserted, updated, deleted]
        self.flags = {}         # relation -> set of created / truncated / dropped
        self.databases = {"created": set(), "dropped": set()}

    # --- feeding ---------------------------------------------------------------------
    def tuple_change(self, xid: int, relation: tuple, kind: int, count: int = 1) -> None:
        self._xid(xid)
        per_xact = self.pending.setdefault(xid, {})
        counts = per_xact.get(relation)
        if counts is None:
            counts = per_xact[relation] = [0, 0, 0]
        counts[kind] += count

    def xact(self, xid: int, op: int, info: int, main: bytes) -> None:
        """A transaction record: commit and prepare keep the work of the transaction (and
        its subtransactions), abort drops it."""
        self._xid(xid)
        if op == XACT_PREPARE:
            self.prepared += 1
            self._finish((xid,), True)
            return
        if op not in (XACT_COMMIT, XACT_COMMIT_PREPARED, XACT_ABORT, XACT_ABORT_PREPARED):
            return
        subxacts, files = _parse_finish(main, info)
        if op in (XACT_COMMIT, XACT_COMMIT_PREPARED):
            self.committed += 1
            when = _I64.unpack_from(main, 0)[0]
            self.first_commit = when if self.first_commit is None else min(self.first_commit,
                                                                           when)
            self.last_commit = when if self.last_commit is None else max(self.last_commit, when)
            self._finish((xid,) + subxacts, True)
            for relation in files:
                self.flags.setdefault(relation, set()).add("dropped")
        else:
            self.aborted += 1
            self._finish((xid,) + subxacts, False)

    def file_event(self, event) -> None:
        """A create/truncate of a relation file or a database created/dropped (FileEvent)."""
        if event.lsn < self.from_lsn:
            return
        if event.kind in ("create_file", "truncate_file") and event.fork == 0:
            flag = "created" if event.kind == "create_file" else "truncated"
            self.flags.setdefault((event.spc, event.db, event.rel), set()).add(flag)
        elif event.kind == "create_database":
            self.databases["created"].add(event.db)
        elif event.kind == "drop_database":
            self.databases["dropped"].add(event.db)

    def _xid(self, xid: int) -> None:
        if xid:
            self.xid_min = xid if self.xid_min is None else min(self.xid_min, xid)
            self.xid_max = xid if self.xid_max is None else max(self.xid_max, xid)

    def _finish(self, xids, keep: bool) -> None:
        """Their work counts (commit, prepare) or not (abort). In a part of a parallel
        scan the xids are remembered too: a transaction may have worked in the parts
        before this one as well as in it, and merging attributes that earlier work."""
        for xid in xids:
            work = self.pending.pop(xid, None)
            if work is not None and keep:
                _add(self.tuples, work)
        if self.part:
            (self.finished_kept if keep else self.finished_dropped).extend(xids)

    # --- parts of a parallel scan ----------------------------------------------------
    def state(self) -> dict:
        return dict(vars(self))

    def merge(self, other: dict) -> None:
        """Add the counters of the scan part that follows this one."""
        self.committed += other["committed"]
        self.aborted += other["aborted"]
        self.prepared += other["prepared"]
        for xid in (other["xid_min"], other["xid_max"]):
            if xid is not None:
                self._xid(xid)
        for name in ("first_commit", "last_commit"):
            theirs, mine = other[name], getattr(self, name)
            if theirs is not None:
                pick = min if name == "first_commit" else max
                setattr(self, name, theirs if mine is None else pick(mine, theirs))
        _add(self.tuples, other["tuples"])
        for relation, flags in other["flags"].items():
            self.flags.setdefault(relation, set()).update(flags)
        for kind in ("created", "dropped"):
            self.databases[kind] |= other["databases"][kind]
        # work left pending by the parts before, finished in this one
        if self.pending:
            for xid in other["finished_kept"]:
                work = self.pending.pop(xid, None)
                if work is not None:
                    _add(self.tuples, work)
            for xid in other["finished_dropped"]:
                self.pending.pop(xid, None)
        for xid, relations in other["pending"].items():
            _add(self.pending.setdefault(xid, {}), relations)

    # --- the report ------------------------------------------------------------------
    def report(self, names: Optional[dict] = None, databases: Optional[dict] = None) -> dict:
        """The `discarded` result; `names` maps a relation to (schema, name), `databases`
        a database oid to its name (both from the source's catalog, when known)."""
        names, databases = names or {}, databases or {}
        relations = []
        for relation in sorted(set(self.tuples) | set(self.flags)):
            spc, db, rel = relation
            inserted, updated, deleted = self.tuples.get(relation, (0, 0, 0))
            flags = self.flags.get(relation, set())
            schema, name = names.get(relation, (None, None))
            relations.append({
                "database": databases.get(db, str(db)), "schema": schema, "name": name,
                "relfilenode": "%d/%d/%d" % relation, "inserted": inserted,
                "updated": updated, "deleted": deleted, "created": "created" in flags,
                "truncated": "truncated" in flags, "dropped": "dropped" in flags})
        return {
            "transactions": {
                "committed": self.committed, "aborted": self.aborted,
                "prepared": self.prepared, "xid_min": self.xid_min, "xid_max": self.xid_max,
                "first_commit": _iso(self.first_commit), "last_commit": _iso(self.last_commit)},
            "relations": relations,
            "databases": {kind: sorted(databases.get(db, str(db)) for db in oids)
                          for kind, oids in self.databases.items()},
        }


def _add(totals: dict, counts: dict) -> None:
    """totals[relation] += counts[relation], for [inserted, updated, deleted]."""
    for relation, values in counts.items():
        total = totals.setdefault(relation, [0, 0, 0])
        for index in range(3):
            total[index] += values[index]


def counting_reader(fmt, read, found, work: DiscardedWork, known=None):
    """The scan's fragment reader `read`, also counting the records after the fork that
    change tuples or finish transactions; each record is still decoded once.

    Hot path: a heap record (every tuple change) is read by the scan's reader, then only
    its first relation is looked up (record.first_relation_reader) and counted inline;
    heap2 records other than multi-inserts (pruning, freezing) count nothing. The rare
    rest is read by a second reader of the one decoder that reports every block, so the
    first one's relation is known even when the scan's reader skips it (in `known`)."""
    first = []
    seen = known if known is not None else ()

    def on_block(fork_flags, spc, db, rel, blkno, block_id, data_len, image):
        if not first:
            first.append((spc, db, rel))
        if fork_flags & BKPBLOCK_FORK_MASK or (rel, blkno, db, spc) not in seen:
            found(fork_flags, spc, db, rel, blkno, block_id, data_len, image)

    every_block = fragment_reader(fmt, on_block)
    first_relation = first_relation_reader(fmt)
    from_lsn = work.from_lsn
    tuple_ops, pending = _TUPLE_OPS, work.pending

    def counting(lsn, end_lsn, buf, off, tot_len, xid, prev, info, rmid):
        if lsn < from_lsn:          # (walk routes only COUNTED_RMGRS here)
            return read(lsn, end_lsn, buf, off, tot_len, xid, prev, info, rmid)
        if rmid == RM_HEAP_ID:
            main_len = read(lsn, end_lsn, buf, off, tot_len, xid, prev, info, rmid)
            kind = tuple_ops.get(info & HEAP_OPMASK)
            if kind is not None:
                relation = first_relation(buf, off)
                if relation is None:
                    return main_len
                per_xact = pending.get(xid)
                if per_xact is None:
                    work.tuple_change(xid, relation, kind)
                else:
                    counts = per_xact.get(relation)
                    if counts is None:
                        counts = per_xact[relation] = [0, 0, 0]
                    counts[kind] += 1
            return main_len
        if rmid == RM_HEAP2_ID and info & HEAP_OPMASK != HEAP2_MULTI_INSERT:
            return read(lsn, end_lsn, buf, off, tot_len, xid, prev, info, rmid)
        del first[:]
        main_len = every_block(lsn, end_lsn, buf, off, tot_len, xid, prev, info, rmid)
        count_record(work, rmid, info, xid, first[0] if first else None,
                     bytes(buf[off + tot_len - main_len:off + tot_len]) if main_len else b"")
        return main_len

    return counting


def count_record(work: DiscardedWork, rmid: int, info: int, xid: int, relation, main: bytes):
    """One record of a counted resource manager (its first block's relation, main data)."""
    if rmid == RM_XACT_ID:
        work.xact(xid, info & XLOG_XACT_OPMASK, info, main)
    elif relation is None:
        return
    elif rmid == RM_HEAP_ID:
        kind = _TUPLE_OPS.get(info & HEAP_OPMASK)
        if kind is not None:
            work.tuple_change(xid, relation, kind)
    elif info & HEAP_OPMASK == HEAP2_MULTI_INSERT and len(main) >= 4:
        work.tuple_change(xid, relation, 0, struct.unpack_from("<H", main, 2)[0])


def _parse_finish(main: bytes, info: int) -> tuple:
    """(subtransaction xids, relation files dropped) of a commit or abort record: the
    optional parts after xact_time, in xact.h's order (dbinfo, subxacts, files)."""
    subxacts, files = (), ()
    if not info & XACT_HAS_INFO or len(main) < 12:
        return subxacts, files
    xinfo = _U32.unpack_from(main, 8)[0]
    pos = 12
    try:
        if xinfo & XINFO_HAS_DBINFO:
            pos += 8
        if xinfo & XINFO_HAS_SUBXACTS:
            count = _I32.unpack_from(main, pos)[0]
            subxacts = struct.unpack_from("<%dI" % count, main, pos + 4)
            pos += 4 + 4 * count
        if xinfo & XINFO_HAS_RELFILES:
            count = _I32.unpack_from(main, pos)[0]
            flat = struct.unpack_from("<%dI" % (3 * count), main, pos + 4)
            files = tuple(flat[i:i + 3] for i in range(0, len(flat), 3))
    except struct.error:
        pass                    # a short record: what was read so far
    return subxacts, files


def _iso(micros: Optional[int]) -> Optional[str]:
    if micros is None:
        return None
    return (_POSTGRES_EPOCH + timedelta(microseconds=micros)).isoformat()


def discarded_report(changes, source) -> Optional[dict]:
    """The `discarded` result of a scan (None when the WAL was not read: the changed
    blocks came from WAL summaries), named through the source where it can."""
    work = changes.discarded
    if work is None:
        return None
    relations = sorted(set(work.tuples) | set(work.flags))
    databases = {rel[1] for rel in relations} | work.databases["created"] | \
        work.databases["dropped"]
    names, db_names = source.catalog_names(relations, sorted(databases))
    return work.report(names, db_names)
