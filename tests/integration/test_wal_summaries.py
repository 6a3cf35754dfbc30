"""Changed blocks from WAL summaries (PostgreSQL 17+, summarize_wal = on) on real failovers.

The oracle is the WAL scan: every block it finds that the plan can use (below the
target's file size; the plan copies nothing else block by block) must be in the set the
summaries give. Rewinds from summaries, and from the fallback scan when the summaries
do not cover the range, must give the new primary's data.
"""

import os
import time

import pytest

from ansible_collections.pgops.rewind.plugins.module_utils.plan import changes as changes_mod
from ansible_collections.pgops.rewind.plugins.module_utils.plan import facts as facts_mod
from ansible_collections.pgops.rewind.plugins.module_utils.wal import summary as walsummary
from ansible_collections.pgops.rewind.plugins.module_utils.pg.blockmap import RelFileSegment
from ansible_collections.pgops.rewind.plugins.module_utils.pg.datadir import BLCKSZ
from ansible_collections.pgops.rewind.plugins.module_utils.source.libpq import LibpqSource
from support.ansible import run_module
from support.rewound import assert_follows_and_matches, rewind
from support.scenarios import Failover, diverge_new_primary, diverge_old_primary, seed

SUMMARIZED = [17, 18]


def summarized_failover(bed, major, fpw_change=False):
    """A diverged failover whose old primary summarized its WAL: two summaries end at
    checkpoints after the fork, the writes after the last one are in no summary.

    The seed is frozen before the fork and autovacuum is off, so nothing on the new
    primary writes full-page images of pages only the old primary changed (hint bits
    set by a first read, a vacuum): replaying those would repair pages a wrong rewind
    left stale and hide the error from the data comparison."""
    primary, standby = bed.primary_and_standby(
        major, settings={"summarize_wal": "on", "autovacuum": "off"})
    seed(primary)
    primary.sql("VACUUM FREEZE")
    primary.checkpoint()
    if fpw_change:       # the rewind must then read from the last common checkpoint
        for toggle in ("SET full_page_writes = off", "RESET full_page_writes"):
            primary.sql("ALTER SYSTEM " + toggle)
            primary.sql("SELECT pg_reload_conf()")
            time.sleep(1)   # the checkpointer applies it (and logs XLOG_FPW_CHANGE) on its own
        # A commit flushes those records (nothing else would before the standby is promoted)
        primary.sql("CREATE TABLE full_page_writes_toggled (id int)")
    primary.wait_for_replay(standby)
    standby.promote()
    standby.checkpoint()
    diverge_old_primary(primary)
    diverge_new_primary(standby)
    # `shrinking` was truncated by VACUUM after the fork: grow it again past its limit block.
    primary.sql("INSERT INTO shrinking SELECT g, repeat('r', 100) FROM generate_series(1, 3000) g")
    primary.checkpoint()            # a redo point: the summarizer ends a summary there
    primary.sql("UPDATE accounts SET note = 'mid' WHERE id % 17 = 0")
    primary.checkpoint()
    redo = primary.scalar("SELECT redo_lsn::text FROM pg_control_checkpoint()")
    primary.wait_until(lambda: primary.scalar(
        "SELECT summarized_lsn >= %s::pg_lsn FROM pg_get_wal_summarizer_state()", (redo,)),
        what="WAL summarized up to the checkpoint")
    primary.sql("UPDATE accounts SET note = 'tail' WHERE id % 11 = 0")   # the unsummarized tail
    primary.stop()
    return Failover(primary, standby)


def _facts(fo):
    source = LibpqSource(fo.new_primary.conninfo())
    try:
        control = facts_mod.target_facts(str(fo.old_primary.datadir))
        return facts_mod.gather_facts(str(fo.old_primary.datadir), control, source)
    finally:
        source.close()


def _target_blocks(pgdata, segment, tablespace_dir):
    path = os.path.join(pgdata, segment.path(tablespace_dir))
    return os.path.getsize(path) // BLCKSZ if os.path.exists(path) else 0


def _assert_contains_scan(summarized, scanned, pgdata, tablespace_dir):
    """Every block the scan found below the target's file size is in the summaries' set."""
    checked = 0
    for segment in scanned.blocks.segments():
        size = _target_blocks(pgdata, segment, tablespace_dir)
        wanted = {b for b in scanned.blocks.blocks(segment) if b < size}
        missing = wanted - set(summarized.blocks.blocks(segment))
        assert not missing, "%s: blocks %s missing" % (segment, sorted(missing)[:20])
        checked += len(wanted)
    assert checked > 100, "the scan found the diverging writes"


def _open_reader(pgdata, facts):
    return lambda: facts_mod.target_reader(pgdata, facts.target, facts.target_history)


@pytest.mark.parametrize("major", SUMMARIZED, ids=lambda m: f"pg{m}")
def test_summaries_contain_the_scans_blocks(bed, major):
    fo = summarized_failover(bed, major)
    pgdata = str(fo.old_primary.datadir)
    facts = _facts(fo)
    spcdir = facts.target.fmt.tablespace_dir
    start, end = facts.last_common_checkpoint.lsn, facts.target_wal_end
    scanned = changes_mod.scan_target_changes(pgdata, facts, use_summaries=False, from_fork=False)
    summarized = changes_mod.scan_target_changes(pgdata, facts, from_fork=False)
    assert walsummary.changes_source(scanned) == "wal_scan"
    # The discarded work comes from the WAL after the fork, read for it.
    assert summarized.discarded is not None
    assert summarized.discarded.report() == scanned.discarded.report()
    assert walsummary.changes_source(summarized) == "wal_summaries"
    assert summarized.summaries and summarized.summaries[0].start <= start
    # Only the tail after the last summary was read: the shutdown checkpoint is in none.
    assert len(summarized.scanned) == 1 and summarized.scanned[0][1] == end
    assert 0 < summarized.wal_bytes < scanned.wal_bytes
    _assert_contains_scan(summarized, scanned, pgdata, spcdir)

    # Limit blocks: every block the target holds at or beyond one counts as changed.
    widened = 0
    for summary in summarized.summaries:
        for entry in walsummary.read_summary(summary.path):
            if entry.fork or not entry.rel or entry.limit == walsummary.INVALID_BLOCK:
                continue
            segment = RelFileSegment(entry.spc, entry.db, entry.rel, 0)
            size = _target_blocks(pgdata, segment, spcdir)
            beyond = set(range(entry.limit, size))
            assert beyond <= set(summarized.blocks.blocks(segment)), segment
            widened += len(beyond)
    assert widened, "the re-grown `shrinking` has blocks beyond its limit block"

    # Without the summary that covers the fork, the gap before the next one is scanned.
    first = summarized.summaries[0]
    os.unlink(first.path)
    partial = walsummary.changes_from_summaries(pgdata, facts.target, facts.target_history,
                                                start, end, _open_reader(pgdata, facts),
                                                max_scan_fraction=1.0)
    assert partial is not None and partial.scanned[0][0] == start
    assert first not in partial.summaries
    _assert_contains_scan(partial, scanned, pgdata, spcdir)

    # A damaged summary is not trusted: the caller scans the WAL.
    damaged = partial.summaries[0].path
    with open(damaged, "r+b") as handle:
        handle.seek(6)
        byte = handle.read(1)
        handle.seek(6)
        handle.write(bytes([byte[0] ^ 0x40]))
    with pytest.raises(walsummary.SummaryError, match="checksum"):
        walsummary.read_summary(damaged)
    assert walsummary.changes_from_summaries(
        pgdata, facts.target, facts.target_history, start, end,
        _open_reader(pgdata, facts), max_scan_fraction=1.0) is None
    fallback = changes_mod.scan_target_changes(pgdata, facts, from_fork=False)
    assert walsummary.changes_source(fallback) == "wal_scan"


@pytest.mark.parametrize("major", SUMMARIZED, ids=lambda m: f"pg{m}")
def test_rewind_from_summaries(bed, major, collection):
    fo = summarized_failover(bed, major, fpw_change=True)
    info = run_module("pg_rewind_info", {"target_pgdata": str(fo.old_primary.datadir),
                                         "source_server": fo.new_primary.conninfo()})
    assert info["changed_blocks_from"] == "wal_summaries" and info["changed_blocks"] > 0, info
    assert info["wal_bytes_common_skipped"] == 0
    assert info["discarded"]["transactions"]["committed"] > 0, info["discarded"]
    result = rewind(fo)
    assert result["changed"] and result["changed_blocks_from"] == "wal_summaries", result
    assert result["wal_scan_start"]["at"] == "last_common_checkpoint", result["wal_scan_start"]
    assert result["discarded"] == info["discarded"]
    lcc = result["last_common_checkpoint"]
    assert result["wal_bytes_scanned"] > 0, lcc
    assert_follows_and_matches(fo)


@pytest.mark.parametrize("major", SUMMARIZED, ids=lambda m: f"pg{m}")
def test_rewind_without_covering_summaries_scans(bed, major, collection):
    fo = summarized_failover(bed, major)
    summaries = os.path.join(str(fo.old_primary.datadir), walsummary.SUMMARY_DIR)
    names = [n for n in os.listdir(summaries) if n.endswith(".summary")]
    assert names, "the old primary wrote summaries"
    for name in names:
        os.unlink(os.path.join(summaries, name))
    result = rewind(fo)
    assert result["changed"] and result["changed_blocks_from"] == "wal_scan", result
    assert result["wal_scan_start"]["at"] == "divergence" and result["discarded"], result
    assert_follows_and_matches(fo)


@pytest.mark.parametrize("major", [17], ids=lambda m: f"pg{m}")
def test_never_scans(bed, major, collection):
    fo = summarized_failover(bed, major)
    result = rewind(fo, use_wal_summaries="never")
    assert result["changed_blocks_from"] == "wal_scan", result
    assert_follows_and_matches(fo)
