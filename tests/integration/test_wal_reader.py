"""The WAL reader on real WAL of every major; pg_waldump (Debian 15) as the oracle."""

import os

import pytest

from ansible_collections.pgops.rewind.plugins.module_utils.errors import RewindError, WalError
from ansible_collections.pgops.rewind.plugins.module_utils.pg.blockmap import RelFileSegment
from ansible_collections.pgops.rewind.plugins.module_utils.pg.lsn import parse_lsn
from ansible_collections.pgops.rewind.plugins.module_utils.wal.record import (
    decode_record, file_event, is_checkpoint)
from ansible_collections.pgops.rewind.plugins.module_utils.wal.scan import (
    ParallelScan, scan_changes, scan_changes_parallel)
from support.cluster import run_pg
from support.env import debian_tool
from support.walread import first_record, pg_waldump, read_records, reader_for

PG15_WORKLOAD = [
    "CREATE TABLE plain (id int PRIMARY KEY, v text)",
    "INSERT INTO plain SELECT g, repeat(md5(g::text), 3) FROM generate_series(1, 20000) g",
    "CREATE INDEX plain_v ON plain (v)",
    "UPDATE plain SET v = v || 'x' WHERE id % 7 = 0",
    "DELETE FROM plain WHERE id % 11 = 0",
    "VACUUM plain",
    "CREATE TABLE shrink AS SELECT g FROM generate_series(1, 10000) g",
    "DELETE FROM shrink WHERE g > 100",
    "VACUUM shrink",                                # truncates the heap: smgr truncate
    "CREATE TABLE doomed AS SELECT g FROM generate_series(1, 5000) g",
    "TRUNCATE doomed",
    "INSERT INTO doomed SELECT g FROM generate_series(1, 100) g",
    "DROP TABLE doomed",
    "VACUUM FULL plain",
    "CREATE DATABASE copy_wal_log",
    "CREATE DATABASE copy_file STRATEGY file_copy",
    "DROP DATABASE copy_file",
    "CREATE UNLOGGED TABLE u AS SELECT g FROM generate_series(1, 1000) g",
    "SET wal_compression = pglz; UPDATE plain SET v = 'pglz' WHERE id < 500",
    "CHECKPOINT",
    "SET wal_compression = lz4; UPDATE plain SET v = 'lz4' WHERE id < 500",
    "CHECKPOINT",
    "SET wal_compression = zstd; UPDATE plain SET v = 'zstd' WHERE id < 500",
    "SELECT pg_logical_emit_message(true, 'big', repeat('0123456789abcdef', 200000))",
    "SELECT pg_switch_wal()",
    "INSERT INTO plain VALUES (-1, 'after switch')",
    "CHECKPOINT",
]


def _pgbench(node, *args):
    run_pg([debian_tool("pgbench"), "-h", "127.0.0.1", "-p", node.port, "-U", "postgres",
            *args, "postgres"], timeout=600)


@pytest.mark.parametrize("segsize", [16, 64, 1])
def test_records_and_blocks_equal_pg_waldump(bed, segsize):
    node = bed.cluster("node", 15).init(wal_segsize_mb=segsize)
    node.start()
    _pgbench(node, "-i", "-s", "2", "-q")
    _pgbench(node, "-t", "300", "-c", "2")
    for statement in PG15_WORKLOAD:
        node.sql(statement)
    node.stop()
    datadir = str(node.datadir)
    reader = reader_for(datadir)
    start = first_record(datadir, reader)
    ours = [decode_record(raw, reader.fmt) for raw in read_records(reader, start)]
    assert reader.end_of_wal is not None
    end = ours[-1].end_lsn
    theirs = pg_waldump(os.path.join(datadir, "pg_wal"), start, end)

    assert len(ours) == len(theirs) > 10000
    for mine, dumped in zip(ours, theirs):
        assert (mine.lsn, mine.prev, mine.rmgr_name, mine.tot_len, mine.xid) == \
            (dumped.lsn, dumped.prev, dumped.rmgr, dumped.tot_len, dumped.xid), dumped
        assert tuple((b.block_id, b.spc, b.db, b.rel, b.fork, b.blkno) for b in mine.blocks) \
            == dumped.blocks, dumped
    # The workload produced every kind of record the rewind must understand.
    kinds = {event.kind for event in (file_event(r, reader.fmt) for r in ours) if event}
    assert kinds >= {"create_file", "truncate_file", "create_database", "drop_database", "relmap"}
    strategies = {file_event(r, reader.fmt).detail[0] for r in ours
                  if r.rmgr_name == "Database" and file_event(r, reader.fmt).kind == "create_database"}
    assert strategies == {"wal_log", "file_copy"}
    infos = {b.bimg_info for r in ours for b in r.blocks if b.has_image}
    assert {0x07, 0x0B, 0x13} <= infos    # pglz, lz4, zstd images with holes
    assert any(r.rmgr_name == "XLOG" and r.info & 0xF0 == 0x40 for r in ours)   # switch
    assert any(r.tot_len > 3 * 1024 * 1024 for r in ours)                         # huge record
    assert sum(1 for r in ours if is_checkpoint(r)) >= 4

    # The scan's fast block extraction agrees with the full decoder, block for block.
    reference = {}
    for record in ours:
        for b in record.blocks:
            if b.fork == 0:
                reference.setdefault((b.spc, b.db, b.rel, b.blkno // 131072), set()).add(
                    b.blkno % 131072)
    changes = scan_changes(reader, start, end, reader.fmt, 131072, count_from=start)
    assert changes.records == len(ours)
    counted = changes.discarded.report()
    assert max(r["inserted"] for r in counted["relations"]) >= 20000   # one transaction
    assert {tuple(k): set(changes.blocks.blocks(k)) for k in changes.blocks.segments()} == reference

    # Split over processes at segment boundaries, the scan finds exactly the same, and
    # counts the same work (transactions whose records run across parts included).
    for workers in (2, 3):
        parallel = scan_changes_parallel(lambda: reader_for(datadir), start, end, reader.fmt,
                                         131072, workers, count_from=start)
        assert parallel.records == len(ours)
        assert parallel.discarded.report() == counted
        assert {tuple(k): set(parallel.blocks.blocks(k))
                for k in parallel.blocks.segments()} == reference
        assert parallel.file_events == changes.file_events

    # Two split scans at once (a rewind's scan started ahead, then one from elsewhere):
    # each takes all of its own parts, the later one collected first.
    first = ParallelScan(lambda: reader_for(datadir), start, end, reader.fmt, 131072, 2,
                         count_from=start)
    try:
        second = scan_changes_parallel(lambda: reader_for(datadir), start, end, reader.fmt,
                                       131072, 2, count_from=start)
        earlier = first.collect()
    finally:
        first.cancel()
    for both in (second, earlier):
        assert both.records == len(ours) and both.discarded.report() == counted
        assert {tuple(k): set(both.blocks.blocks(k)) for k in both.blocks.segments()} == \
            reference

    # A worker failing as a bug would is reported as a bug (internal_error), not as
    # damaged WAL (which fallback=clone would act on) nor as a killed process. The WAL
    # of 1 MB segments is long enough to split (with 64 MB it is one segment).
    if segsize != 1:
        return
    opened = []

    planted = []

    def fail(*_args, **_kwargs):
        raise planted[0]

    def open_failing():
        opened.append(1)           # 1 here, in this process; 2 in each forked worker
        real = reader_for(datadir)
        if len(opened) > 1:
            real.walk = fail
        return real

    with pytest.raises(RewindError) as failed:
        planted[:] = [ValueError("planted")]
        scan_changes_parallel(open_failing, start, end, reader.fmt, 131072, 2)
    assert failed.value.code == "internal_error", failed.value
    assert "ValueError: planted" in failed.value.message
    # A worker's own error keeps its code (fallback=clone and the hint depend on it).
    del opened[:]
    with pytest.raises(WalError) as failed:
        planted[:] = [WalError("planted", code="wal_unknown_special_record")]
        scan_changes_parallel(open_failing, start, end, reader.fmt, 131072, 2)
    assert failed.value.code == "wal_unknown_special_record", failed.value


def test_changed_blocks_of_known_updates(bed, major):
    """On every major: the blocks of rows changed after a point are found, read end to end."""
    # compressed full-page images (pglz, the one method every major has)
    node = bed.cluster("node", major).init(checksums=True, settings={"wal_compression": "on"})
    node.start()
    node.sql("CREATE TABLE t (id int PRIMARY KEY, pad text) WITH (fillfactor = 50)")
    node.sql("INSERT INTO t SELECT g, repeat('p', 200) FROM generate_series(1, 30000) g")
    node.checkpoint()
    since = parse_lsn(node.scalar("SELECT pg_current_wal_lsn()::text"))
    ids = [17, 4000, 12345, 29999]
    old_blocks = {node.scalar("SELECT (ctid::text::point)[0]::int FROM t WHERE id = %s", (i,))
                  for i in ids}
    node.sql("UPDATE t SET pad = 'changed' WHERE id = ANY(%s)", (ids,))
    new_blocks = {row[0] for row in node.sql(
        "SELECT (ctid::text::point)[0]::int FROM t WHERE id = ANY(%s)", (ids,))}
    filenode = node.scalar("SELECT pg_relation_filenode('t')")
    dboid = node.scalar("SELECT oid FROM pg_database WHERE datname = current_database()")
    node.sql("SELECT pg_logical_emit_message(true, 'spans segments', repeat('z', 20000000))")
    node.stop()

    reader = reader_for(str(node.datadir))
    records = read_records(reader, since)
    end = records[-1].end_lsn
    assert reader.end_of_wal is not None
    changes = scan_changes(reader, records[0].lsn, end, reader.fmt, 131072)
    changed = set(changes.blocks.blocks(RelFileSegment(1663, dboid, filenode, 0)))
    assert old_blocks | new_blocks <= changed
    assert changes.records == len(records)
    images = [b for r in records for b in decode_record(r, reader.fmt).blocks if b.has_image]
    assert any(b.bimg_info & reader.fmt.image.compressed_mask for b in images)
    assert any(b.bimg_info & reader.fmt.image.has_hole for b in images)
    # whole history from the first segment reads without error too
    start = first_record(str(node.datadir), reader)
    total = len(read_records(reader, start))
    assert total > len(records)
    assert reader.end_of_wal is not None


def test_overwritten_contrecord(bed, major):
    """A record cut off by a crash is skipped where the server wrote over it
    (XLP_FIRST_IS_OVERWRITE_CONTRECORD), as PostgreSQL's own reader does."""
    node = bed.cluster("node", major).init()
    node.start()
    node.sql("CREATE TABLE t (id int)")
    node.checkpoint()
    node.sql("INSERT INTO t VALUES (1)")
    start = parse_lsn(node.scalar("SELECT pg_current_wal_insert_lsn()::text"))
    # Larger than a segment: it certainly continues into the next segment file.
    node.sql("SELECT pg_logical_emit_message(true, 'cut', repeat('q', 17000000))")
    node.stop(mode="immediate")
    seg = 16 << 20
    waldir = node.datadir / "pg_wal"
    for name in os.listdir(waldir):   # as if the rest of the record never reached disk
        if len(name) == 24 and int(name[8:], 16) > start // seg:
            os.unlink(waldir / name)
    node.start()
    node.sql("INSERT INTO t VALUES (2)")
    assert node.scalar("SELECT array_agg(id ORDER BY id) FROM t") == [1, 2]
    node.stop()

    reader = reader_for(str(node.datadir))
    records = [decode_record(r, reader.fmt) for r in read_records(reader, start)]
    kinds = [(r.rmgr_name, r.info & 0xF0) for r in records]
    assert ("XLOG", 0xD0) in kinds                       # XLOG_OVERWRITE_CONTRECORD
    overwrite = next(r for r in records if (r.rmgr_name, r.info & 0xF0) == ("XLOG", 0xD0))
    assert overwrite.lsn == (start // seg + 1) * seg + 40   # first record of the next segment
    assert not any(r.rmgr_name == "LogicalMessage" for r in records)
    assert any(r.rmgr_name == "Heap" for r in records if r.lsn > overwrite.lsn)


def test_file_level_records_every_major(bed, major):
    """Database create/drop, file create/truncate and relmap records decode on every major."""
    node = bed.cluster("node", major).init()
    node.start()
    node.checkpoint()
    since = parse_lsn(node.scalar("SELECT pg_current_wal_lsn()::text"))
    node.sql("CREATE DATABASE d1")
    d1 = node.scalar("SELECT oid FROM pg_database WHERE datname = 'd1'")
    node.sql("CREATE TABLE shrink AS SELECT g FROM generate_series(1, 10000) g")
    rel = node.scalar("SELECT pg_relation_filenode('shrink')")
    node.sql("DELETE FROM shrink WHERE g > 100")
    node.sql("VACUUM shrink")
    node.sql("VACUUM FULL pg_class")   # a mapped catalog: relation map update
    node.sql("DROP DATABASE d1")
    node.stop()
    reader = reader_for(str(node.datadir))
    events = [e for e in (file_event(decode_record(r, reader.fmt), reader.fmt)
                          for r in read_records(reader, since)) if e]
    by_kind = {}
    for event in events:
        by_kind.setdefault(event.kind, []).append(event)
    assert any(e.db == d1 and e.spc == 1663 for e in by_kind["create_database"])
    assert any(e.db == d1 and e.detail == (1663,) for e in by_kind["drop_database"])
    assert any(e.rel == rel and e.fork == 0 for e in by_kind["create_file"])
    assert any(e.rel == rel and 0 < e.blkno < 10 for e in by_kind["truncate_file"])
    assert by_kind["relmap"]
