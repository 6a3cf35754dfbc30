"""The last common checkpoint searched for in the WAL's bytes equals the one the walk
back through xl_prev finds, on real WAL of every major (wal/checkpoint_search.py).

The WAL holds what can fool a byte search: checkpoint records planted inside table
data (CRC-valid copies of a real one, at every 8-byte alignment), XLOG_SWITCH padding,
records spanning pages and segments (1 MB segments), and full_page_writes switched off
and on (FPW_CHANGE). For forks all along it, the search's answer (checkpoint and first
FPW change after it) is the walk's; with a segment missing it gives up and the walk's
error stands.
"""

from __future__ import annotations

import os
import shutil
import time

import pytest

from ansible_collections.pgops.rewind.plugins.module_utils.errors import MissingWalError, WalError
from ansible_collections.pgops.rewind.plugins.module_utils.pg.lsn import parse_lsn, segment_name
from ansible_collections.pgops.rewind.plugins.module_utils.wal.checkpoint_search import \
    search_last_checkpoint
from ansible_collections.pgops.rewind.plugins.module_utils.wal.record import (
    SIZE_OF_RECORD_HEADER, XLOG_FPW_CHANGE, XLOG_PARAMETER_CHANGE, changes_full_page_writes,
    is_checkpoint)
from ansible_collections.pgops.rewind.plugins.module_utils.wal.scan import (
    find_last_common_checkpoint, walk_back_to_checkpoint)
from support.walread import first_record, read_records, reader_for


def _fpw(node, value):
    node.sql("ALTER SYSTEM SET full_page_writes = %s" % value)
    node.sql("SELECT pg_reload_conf()")
    time.sleep(1.0)          # the checkpointer logs XLOG_FPW_CHANGE when it applies it


def _workload(node):
    node.sql("CREATE TABLE t (id int, v text)")
    node.sql("CREATE TABLE planted (id int, b bytea)")
    node.sql("ALTER TABLE planted ALTER COLUMN b SET STORAGE EXTERNAL")
    for round_ in range(3):
        node.sql("INSERT INTO t SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 8000) g")
        node.checkpoint()
        node.sql("UPDATE t SET v = v || 'x' WHERE id %% 3 = %d" % round_)
        if round_ == 1:
            _fpw(node, "off")
            node.sql("UPDATE t SET v = 'nofpw' WHERE id % 5 = 0")
            _fpw(node, "on")
        if round_ == 2:      # a restart with another setting: XLOG_PARAMETER_CHANGE
            node.sql("ALTER SYSTEM SET max_prepared_transactions = 7")
            node.restart()
            node.sql("UPDATE t SET v = 'restarted' WHERE id % 7 = 0")
        node.sql("SELECT pg_switch_wal()")
        node.sql("INSERT INTO t SELECT g, repeat('y', 3000) FROM generate_series(1, 300) g")


def _plant(node, record: bytes):
    """Copies of a real checkpoint record inside table data, at every alignment."""
    for pad in range(8):
        node.sql("INSERT INTO planted VALUES (%s, %s)", (pad, b"\x00" * pad + record * 4))


def test_search_equals_walk(bed, major):
    node = bed.cluster("node", major).init(wal_segsize_mb=1)
    node.start()
    _workload(node)
    datadir = str(node.datadir)
    node.checkpoint()
    reader = reader_for(datadir)
    records = read_records(reader, first_record(datadir, reader))
    checkpoint = [r for r in records if is_checkpoint(r)][-1]
    _plant(node, bytes(checkpoint.data))
    node.sql("INSERT INTO t VALUES (-1, 'after the planted ones')")
    node.stop()

    reader = reader_for(datadir)
    records = read_records(reader, first_record(datadir, reader))
    fmt = reader.fmt
    checkpoints = [r.lsn for r in records if is_checkpoint(r)]
    fpw_changes = [r.lsn for r in records if changes_full_page_writes(r)]
    kinds = {r.info & 0xF0 for r in records if changes_full_page_writes(r)}
    assert len(checkpoints) >= 5 and kinds == {XLOG_FPW_CHANGE, XLOG_PARAMETER_CHANGE}, \
        (checkpoints, fpw_changes, kinds)
    after = {records[i + 1].lsn for i, r in enumerate(records[:-1])
             if is_checkpoint(r) or changes_full_page_writes(r)}
    forks = sorted(after | {records[i].lsn for i in range(1, len(records), len(records) // 40)}
                   | {records[-1].lsn})
    compared = 0
    for fork in forks:
        if fork <= checkpoints[0]:
            continue
        walked = walk_back_to_checkpoint(reader, fork, fork, fmt)
        found = search_last_checkpoint(reader, fork, fmt)
        assert found is not None, "the search gave up at fork %X" % fork
        assert (found.lsn, found.fpw_changed_at) == (walked.lsn, walked.fpw_changed_at), fork
        compared += 1
    assert compared >= 20
    # The planted copies were found by the byte search and refused as records.
    end = records[-1].lsn          # the shutdown checkpoint: the one before it is found
    last = search_last_checkpoint(reader, end, fmt)
    assert last.candidates_rejected >= 1, last
    assert last.lsn == max(lsn for lsn in checkpoints if lsn < end)
    # Through find_last_common_checkpoint, which says how it found it.
    common = find_last_common_checkpoint(reader, end, fmt)
    assert (common.lsn, common.found) == (last.lsn, "search")
    reader.close()


def _long_stretch(bed):
    """A stopped node whose last checkpoint before its shutdown checkpoint lies two
    segments or more back: (datadir, that checkpoint's segment, the shutdown one)."""
    node = bed.cluster("node", 15).init(wal_segsize_mb=1)
    node.start()
    node.sql("CREATE TABLE t (id int, v text)")
    node.checkpoint()
    for _round in range(4):
        node.sql("INSERT INTO t SELECT g, repeat(md5(g::text), 8) FROM generate_series(1, 4000) g")
    node.stop()
    datadir = str(node.datadir)
    reader = reader_for(datadir)
    records = read_records(reader, first_record(datadir, reader))
    fork = records[-1].lsn         # the shutdown checkpoint
    cp = [r.lsn for r in records if is_checkpoint(r) and r.lsn < fork][-1]
    assert fork // reader.seg_size - cp // reader.seg_size >= 2
    return datadir, reader, cp, fork


def test_missing_segment_leaves_it_to_the_walk(bed):
    datadir, reader, cp, fork = _long_stretch(bed)
    middle = segment_name(1, cp // reader.seg_size + 1, reader.seg_size)
    shutil.move(os.path.join(datadir, "pg_wal", middle), os.path.join(datadir, middle))
    reader = reader_for(datadir)
    assert search_last_checkpoint(reader, fork, reader.fmt) is None
    with pytest.raises(MissingWalError) as raised:
        find_last_common_checkpoint(reader, fork, reader.fmt)
    assert middle in raised.value.message


def test_damaged_page_leaves_it_to_the_walk(bed):
    """A zeroed page between the checkpoint and the fork (no XLOG_SWITCH before it): the
    search gives up, and the walk back reports the damage as it always did."""
    datadir, reader, cp, fork = _long_stretch(bed)
    middle = segment_name(1, cp // reader.seg_size + 1, reader.seg_size)
    with open(os.path.join(datadir, "pg_wal", middle), "r+b") as handle:
        handle.seek(40 * 8192)
        handle.write(bytes(8192))
    reader = reader_for(datadir)
    assert search_last_checkpoint(reader, fork, reader.fmt) is None
    with pytest.raises(WalError) as raised:
        find_last_common_checkpoint(reader, fork, reader.fmt)
    assert "could not find the last common checkpoint" in raised.value.message


def _insert_lsn(node) -> int:
    return parse_lsn(node.scalar("SELECT pg_catalog.pg_current_wal_insert_lsn()::text"))


def _emit(node, size: int) -> int:
    """A non-transactional logical message with `size` bytes of content: how far the
    insert position moved."""
    before = _insert_lsn(node)
    node.sql("SELECT pg_catalog.pg_logical_emit_message(false, 'p', repeat('x', %s))", (size,))
    return _insert_lsn(node) - before


def _shutdown_checkpoint_at(node, seg_size, back) -> int:
    """Stop `node` so that its shutdown checkpoint starts `back` bytes before a segment's
    end (its header split by the boundary): a logical message of the size that ends
    there, then a fast stop. The position, or 0 if something else wrote WAL between."""
    position = _insert_lsn(node)
    target = (position // seg_size + 2) * seg_size - back
    while target - position > 3000:                  # to the segment's last page
        position += _emit(node, min(4000, target - position - 2500))
    step = _emit(node, 400)                           # what a message costs beyond its content
    final = target - (position + step) - (step - 400)
    assert final >= 300, final
    _emit(node, final)
    reached = _insert_lsn(node)
    node.stop()
    return target if reached == target else 0


def test_checkpoint_header_split_at_a_segment_end(bed, major):
    """A record header the segment boundary splits is found in the seam: the last bytes
    of one segment joined to those after the next segment's long page header."""
    node = bed.cluster("node", major).init(wal_segsize_mb=1)
    node.start()
    seg_size = 1 << 20
    for attempt in range(6):
        at = _shutdown_checkpoint_at(node, seg_size, 16 if attempt % 2 == 0 else 8)
        node.start()
        if not at:
            continue
        node.sql("CREATE TABLE after_%d (id int)" % attempt)
        node.stop()
        datadir = str(node.datadir)
        reader = reader_for(datadir)
        records = read_records(reader, first_record(datadir, reader))
        by_lsn = {r.lsn: i for i, r in enumerate(records)}
        if at not in by_lsn or not is_checkpoint(records[by_lsn[at]]):
            node.start()
            continue                                  # something else got there first
        assert at % seg_size > seg_size - SIZE_OF_RECORD_HEADER
        fork = records[by_lsn[at] + 1].lsn
        walked = walk_back_to_checkpoint(reader, fork, fork, reader.fmt)
        found = search_last_checkpoint(reader, fork, reader.fmt)
        assert walked.lsn == at
        assert found is not None and found.lsn == at, (found, at)
        reader.close()
        return
    pytest.fail("no shutdown checkpoint landed across a segment boundary in 6 attempts")
