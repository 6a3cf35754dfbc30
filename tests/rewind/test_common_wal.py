"""The changed-block scan starts at the fork: the WAL both sides share is not read.

A real failover: much activity after the old primary's last checkpoint (relation
extension and truncation, VACUUM with its visibility and free space maps, tables and
databases created and dropped, hint-bit full-page images, a transaction open across
the fork), then a short divergence. The rewind reads only the diverged WAL; replay from
the last common checkpoint's redo repairs every page the common WAL changed
(design.md, "Scanning only what diverged"). Oracle: the rewound node follows the new
primary and holds its data (a transaction that committed only on the old primary,
whose pages got hint bits there without WAL, stays invisible), amcheck is clean, and
the blocks the scan from the checkpoint would have added are exactly blocks the common
WAL changed. With full_page_writes off at the checkpoint or changed before the fork the
rewind scans from the checkpoint, as PostgreSQL's pg_rewind does.
"""

from __future__ import annotations

import os
import time

import pytest

from ansible_collections.pgops.rewind.plugins.module_utils.plan import changes as changes_mod
from ansible_collections.pgops.rewind.plugins.module_utils.plan import facts as facts_mod
from ansible_collections.pgops.rewind.plugins.module_utils.source.libpq import LibpqSource
from ansible_collections.pgops.rewind.plugins.module_utils.wal.scan import scan_changes
from support.rewound import assert_follows_and_matches, rewind
from support.scenarios import Failover, seed


def _ok(result):
    assert not result["failed"], "%s (%s)" % (result.get("msg"), result.get("error_code"))
    return result


def _common_activity(primary, standby, fpw_change=False):
    """Writes after the last checkpoint, all replicated before the fork; returns the
    open connection of a transaction that is still running at the fork."""
    primary.sql("CREATE TABLE pending (id int, pad text) WITH (fillfactor = 50)")
    primary.sql("INSERT INTO pending SELECT g, repeat('p', 100) FROM generate_series(1, 3000) g")
    primary.sql("VACUUM FREEZE pending")     # hint bits set: no image for hints later
    primary.sql("UPDATE accounts SET note = 'pre' WHERE id % 5 = 0")   # tuples with no hints
    primary.wait_for_replay(standby)
    primary.checkpoint()
    primary.sql("CREATE DATABASE common_db")
    primary.sql("CREATE TABLE c AS SELECT generate_series(1, 2000) AS id", dbname="common_db")
    primary.sql("CREATE DATABASE dropped_db")
    primary.sql("DROP DATABASE dropped_db")
    if fpw_change:                  # after the last checkpoint (database commands make some)
        primary.sql("ALTER SYSTEM SET full_page_writes = off")
        primary.sql("SELECT pg_reload_conf()")
        time.sleep(1)   # the checkpointer applies it (and logs XLOG_FPW_CHANGE) on its own
    primary.sql("SELECT count(*) FROM accounts")       # hint bits: full-page images for hint
    primary.sql("INSERT INTO growing SELECT g, repeat('g', 200) FROM generate_series(1, 20000) g")
    primary.sql("DELETE FROM shrinking WHERE id > 2000")
    primary.sql("VACUUM shrinking")                      # truncation, VM, FSM
    primary.sql("UPDATE accounts SET balance = balance + 3 WHERE id % 4 = 0")
    primary.sql("VACUUM accounts")
    primary.sql("CREATE TABLE made_common AS SELECT g AS id, md5(g::text) AS h "
                "FROM generate_series(1, 30000) g")
    primary.sql("CREATE INDEX made_common_h ON made_common (h)")
    primary.sql("CREATE TABLE dropped_common AS SELECT generate_series(1, 5000) AS id")
    primary.sql("DROP TABLE dropped_common")
    conn = primary.connect()
    conn.autocommit = False
    with conn.cursor() as cur:      # pages that existed at the checkpoint, changed in place
        cur.execute("UPDATE pending SET pad = 'q' WHERE id % 2 = 0")
        cur.execute("SELECT pg_current_wal_insert_lsn()::text")
        inserted = cur.fetchone()[0]
    standby.wait_until(lambda: standby.scalar(
        "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (inserted,)),
        what="the open transaction's rows replayed")
    return conn


def _failover(bed, major, settings=None, fpw_change=False, long_divergence=0):
    """With `long_divergence` (rows): 1 MB segments, and that many rows inserted on the
    old primary after the fork, so the diverged WAL is long enough to be scanned by
    several processes."""
    init = {"wal_segsize_mb": 1} if long_divergence else {}
    primary, standby = bed.primary_and_standby(major, settings=settings, **init)
    seed(primary)
    primary.wait_for_replay(standby)
    conn = _common_activity(primary, standby, fpw_change)
    standby.promote()
    if (settings or {}).get("full_page_writes") == "off":     # a rewind's source needs it
        standby.sql("ALTER SYSTEM SET full_page_writes = on")
        standby.sql("SELECT pg_reload_conf()")
    standby.checkpoint()
    # The short divergence: the open transaction commits on the old primary only and its
    # pages get hint bits there (no WAL: their LSN is past the redo pointer; with full-page
    # writes their first change after it carried an image, which replay restores).
    conn.commit()
    conn.close()
    assert primary.scalar("SELECT count(*) FROM pending WHERE pad = 'q'") == 1500
    primary.sql("UPDATE accounts SET note = 'old' WHERE id % 97 = 0")
    primary.sql("INSERT INTO history (note) SELECT 'old ' || g FROM generate_series(1, 200) g")
    standby.sql("UPDATE accounts SET note = 'new' WHERE id % 89 = 0")
    if long_divergence:
        primary.sql("INSERT INTO growing SELECT g, repeat('d', 200) FROM generate_series(1, %s) g",
                    (long_divergence,))
    if fpw_change:
        primary.sql("ALTER SYSTEM RESET full_page_writes")
        primary.sql("SELECT pg_reload_conf()")
    primary.stop()
    return Failover(primary, standby)


def _follows_and_matches(fo):
    """assert_follows_and_matches, but `pending` is read on the rewound node before the
    new primary reads it: a first read there sets hint bits with full-page images, whose
    replay would repair the rewound node's pages and hide a wrong rewind."""
    old, new = fo.old_primary, fo.new_primary
    old.start()
    new.wait_until(lambda: new.scalar(
        "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'") >= 1,
        what="the rewound node streaming")
    new.wait_for_replay(old)
    assert old.scalar("SELECT count(*) FROM pending WHERE pad = 'q'") == 0
    old.stop()
    assert_follows_and_matches(fo)


def _facts(fo):
    source = LibpqSource(fo.new_primary.conninfo())
    try:
        control = facts_mod.target_facts(str(fo.old_primary.datadir))
        return facts_mod.gather_facts(str(fo.old_primary.datadir), control, source)
    finally:
        source.close()


def _block_set(changes) -> set:
    return {(seg, b) for seg in changes.blocks.segments() for b in changes.blocks.blocks(seg)}


def _relfilenode(node, table) -> int:
    return node.scalar("SELECT pg_relation_filenode(%s)", (table,))


def _common_blocks(pgdata, facts, fork):
    """Blocks the records from the last common checkpoint up to the fork reference."""
    reader = facts_mod.target_reader(pgdata, facts.target, facts.target_history)
    try:
        return scan_changes(reader, facts.last_common_checkpoint.lsn, None, facts.target.fmt,
                            facts.target.relseg_size, limit=fork)
    finally:
        reader.close()


def _amcheck(node) -> str:
    """bt_index_check with heapallindexed on every btree index (and verify_heapam on every
    table, 14+) of the rewound node; returns what was checked."""
    if not node.scalar("SELECT count(*) FROM pg_available_extensions WHERE name = 'amcheck'"):
        return "amcheck not available"
    indexes = node.sql(
        "SELECT c.oid::regclass::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "JOIN pg_am a ON a.oid = c.relam WHERE a.amname = 'btree' AND c.relpersistence = 'p'")
    for (index,) in indexes:
        node.sql("SELECT bt_index_check(%s::regclass, true)", (index,))
    tables = 0
    if node.major >= 14:
        for (table,) in node.sql("SELECT oid::regclass::text FROM pg_class WHERE relkind = 'r' "
                                 "AND relpersistence = 'p'"):
            problems = node.sql("SELECT * FROM verify_heapam(%s::regclass)", (table,))
            assert not problems, (table, problems[:5])
            tables += 1
    return "%d btree indexes, %d tables" % (len(indexes), tables)


def test_scan_from_the_fork_after_much_common_wal(bed, collection, major):
    fo = _failover(bed, major)
    old, new = fo.old_primary, fo.new_primary
    pgdata = str(old.datadir)
    facts = _facts(fo)
    begin = facts.scan_start()
    assert begin.at == facts_mod.SCAN_FROM_FORK, begin
    lcc = facts.last_common_checkpoint
    assert lcc.full_page_writes and lcc.fpw_changed_at is None

    from_fork = changes_mod.scan_target_changes(pgdata, facts, use_summaries=False)
    full = changes_mod.scan_target_changes(pgdata, facts, use_summaries=False, from_fork=False)
    assert from_fork.start == begin.lsn and full.start == lcc.lsn
    assert from_fork.common_skipped == begin.lsn - lcc.lsn > 4 << 20, from_fork.common_skipped
    assert from_fork.wal_bytes < full.wal_bytes and from_fork.records < full.records
    # The fork's blocks are a subset; what the full scan adds was changed by common WAL.
    fork_blocks, full_blocks = _block_set(from_fork), _block_set(full)
    assert fork_blocks <= full_blocks
    added = full_blocks - fork_blocks
    common = _block_set(_common_blocks(pgdata, facts, begin.lsn))
    assert added and added <= common, sorted(added - common)[:10]
    # `pending` got hint bits only on the old primary: pages of it that no record after
    # the fork touched (a read there prunes some) are not copied; replay of the common
    # WAL's full-page images repairs them.
    pending = _relfilenode(new, "pending")
    assert any(seg.rel == pending for seg, _b in added)
    # The discarded-work count is the same both ways (it counts from the fork).
    assert from_fork.discarded.report() == full.discarded.report()

    result = _ok(rewind(fo))
    assert result["wal_scan_start"]["at"] == "divergence", result["wal_scan_start"]
    assert result["wal_bytes_common_skipped"] == begin.lsn - lcc.lsn
    assert result["wal_bytes_scanned"] == facts.target_wal_end - begin.lsn
    assert result["discarded"]["transactions"]["committed"] >= 3, result["discarded"]
    _follows_and_matches(fo)
    assert new.scalar("SELECT count(*) FROM pending WHERE pad = 'q'") == 0
    if new.scalar("SELECT count(*) FROM pg_available_extensions WHERE name = 'amcheck'"):
        new.sql("CREATE EXTENSION IF NOT EXISTS amcheck")
        new.wait_for_replay(old)
    print("pg%d amcheck: %s" % (major, _amcheck(old)))


@pytest.mark.parametrize("how", ["off_at_checkpoint", "changed_before_fork"])
@pytest.mark.parametrize("major", [11, 15, 18], ids=lambda m: f"pg{m}")
def test_full_page_writes_off_scans_from_the_checkpoint(bed, collection, major, how):
    if how == "off_at_checkpoint":
        fo = _failover(bed, major, settings={"full_page_writes": "off"})
    else:
        fo = _failover(bed, major, fpw_change=True)
    pgdata = str(fo.old_primary.datadir)
    facts = _facts(fo)
    begin = facts.scan_start()
    assert begin.at == facts_mod.SCAN_FROM_CHECKPOINT, begin
    assert ("full_page_writes = off" if how == "off_at_checkpoint" else "may have changed") \
        in begin.reason, begin.reason
    changes = changes_mod.scan_target_changes(pgdata, facts, use_summaries=False)
    assert changes.start == facts.last_common_checkpoint.lsn and changes.common_skipped == 0
    # Why it must: pages the common WAL changed without a full-page image (`pending`'s)
    # are found only by reading from the checkpoint.
    fork = facts_mod.first_record_position(facts.divergence.lsn, facts.target.xlog_seg_size)
    common = _common_blocks(pgdata, facts, fork)
    reader = facts_mod.target_reader(pgdata, facts.target, facts.target_history)
    try:
        diverged = scan_changes(reader, fork, facts.target_wal_end, facts.target.fmt,
                                facts.target.relseg_size)
    finally:
        reader.close()
    only_common = _block_set(common) - _block_set(diverged)
    assert only_common <= _block_set(changes)
    result = _ok(rewind(fo))
    assert result["wal_scan_start"]["at"] == "last_common_checkpoint", result["wal_scan_start"]
    assert result["wal_bytes_common_skipped"] == 0
    _follows_and_matches(fo)


@pytest.mark.parametrize("how", ["from_fork", "changed_before_fork"])
@pytest.mark.parametrize("major", [11, 15, 18], ids=lambda m: f"pg{m}")
def test_diverged_wal_scanned_ahead_of_the_checkpoint_search(bed, collection, major, how):
    """A long divergence (1 MB segments, more than PARALLEL_SCAN_MIN_SEGMENTS of them) is
    scanned by several processes started before the walk back to the last common
    checkpoint (plan/changes.py diverged_scan_ahead). When that checkpoint then says
    the scan must start there (full_page_writes changed before the fork), the early
    scan is dropped and the WAL is read from the checkpoint: the speculation never
    decides what is read."""
    cpus = os.cpu_count() or 1
    assert cpus >= 2, "one CPU: the scan cannot be split on this host, the test proves nothing"
    rows = 60000
    fo = _failover(bed, major, fpw_change=how == "changed_before_fork", long_divergence=rows)
    facts = _facts(fo)
    lcc = facts.last_common_checkpoint
    result = _ok(rewind(fo))
    assert result["wal_scan_processes"] == min(4, cpus), result["wal_scan_processes"]
    if how == "from_fork":
        assert result["wal_scan_ahead"] is True, result["wal_scan_start"]
        assert result["wal_scan_start"]["at"] == "divergence", result["wal_scan_start"]
        assert result["wal_bytes_common_skipped"] > 0
    else:
        assert result["wal_scan_ahead"] is False
        assert result["wal_scan_start"]["at"] == "last_common_checkpoint", \
            result["wal_scan_start"]
        assert result["wal_bytes_scanned"] == facts.target_wal_end - lcc.lsn
    growing = [r for r in result["discarded"]["relations"] if r["name"] == "growing"]
    assert [r["inserted"] for r in growing] == [rows], growing
    _follows_and_matches(fo)
