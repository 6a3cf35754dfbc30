"""Fork detection on real failovers, every major: is a rewind needed, and from where."""

import re

import pytest

from ansible_collections.pgops.rewind.plugins.module_utils.plan import facts as facts_mod
from ansible_collections.pgops.rewind.plugins.module_utils.errors import RefusedError, TimelineError
from ansible_collections.pgops.rewind.plugins.module_utils.pg.lsn import format_lsn, parse_lsn
from ansible_collections.pgops.rewind.plugins.module_utils.source.libpq import LibpqSource
from ansible_collections.pgops.rewind.plugins.module_utils.source.local import LocalSource
from ansible_collections.pgops.rewind.plugins.module_utils.wal.record import is_checkpoint
from support.cluster import run_pg
from support.env import debian_tool
from support.scenarios import failover, switchover
from support.walread import reader_for


def _switchpoint(node, tli=2):
    text = (node.datadir / "pg_wal" / ("%08X.history" % tli)).read_text()
    first = text.splitlines()[0].split("\t")
    return int(first[0]), parse_lsn(first[1])


def _gather(target, source):
    control = facts_mod.target_facts(str(target.datadir))
    return facts_mod.gather_facts(str(target.datadir), control, source)


def test_diverged_failover(bed, major):
    fo = failover(bed, major)
    source = LibpqSource(fo.new_primary.conninfo())
    try:
        facts = _gather(fo.old_primary, source)
    finally:
        source.close()
    parent, switch = _switchpoint(fo.new_primary)
    assert facts.rewind_required and facts.reason == "diverged"
    assert (facts.divergence.tli, facts.divergence.lsn) == (parent, switch) == (1, switch)
    assert (facts.target_timeline, facts.source_timeline) == (1, 2)
    assert facts.target_wal_end > switch
    lcc = facts.last_common_checkpoint
    assert lcc.lsn < switch and lcc.redo <= lcc.lsn and lcc.tli == 1
    reader = reader_for(str(fo.old_primary.datadir))
    assert is_checkpoint(reader.record_at(lcc.lsn))
    assert facts.keep_wal, "the walk back read at least one segment"


def test_agrees_with_native_pg_rewind_on_15(bed):
    fo = failover(bed, 15)
    source = LibpqSource(fo.new_primary.conninfo())
    try:
        facts = _gather(fo.old_primary, source)
    finally:
        source.close()
    native = run_pg([debian_tool("pg_rewind"), "--dry-run", "--debug", "-D", fo.old_primary.datadir,
                     "--source-server", fo.new_primary.conninfo()], check=False)
    assert native.returncode == 0, native.stderr
    diverged = re.search(r"servers diverged at WAL location (\S+) on timeline (\d+)", native.stderr)
    rewinding = re.search(r"rewinding from last common checkpoint at (\S+) on timeline (\d+)",
                          native.stderr)
    assert (format_lsn(facts.divergence.lsn), facts.divergence.tli) == \
        (diverged.group(1), int(diverged.group(2)))
    assert (format_lsn(facts.last_common_checkpoint.lsn), facts.last_common_checkpoint.tli) == \
        (rewinding.group(1), int(rewinding.group(2)))


def test_switchover_needs_no_rewind(bed, major):
    fo = switchover(bed, major)
    source = LibpqSource(fo.new_primary.conninfo())
    try:
        facts = _gather(fo.old_primary, source)
    finally:
        source.close()
    assert not facts.rewind_required
    assert facts.reason == "target_is_ancestor"
    assert facts.divergence.lsn == _switchpoint(fo.new_primary)[1] == facts.target_wal_end


def test_same_timeline_needs_no_rewind(bed, major):
    primary, standby = bed.primary_and_standby(major)
    primary.sql("CREATE TABLE t AS SELECT 1 AS x")
    primary.wait_for_replay(standby)
    standby.stop()
    source = LibpqSource(primary.conninfo())
    try:
        facts = _gather(standby, source)
    finally:
        source.close()
    assert not facts.rewind_required and facts.reason == "same_timeline"
    assert facts.divergence is None and facts.last_common_checkpoint is None


def test_source_promoted_a_moment_ago(bed, major):
    """Before 16 a just-promoted server's pg_control keeps the old timeline until its
    end-of-recovery checkpoint completes; the answer must still be "diverged"."""
    primary, standby = bed.primary_and_standby(major)
    standby.write_node_settings({"checkpoint_timeout": "'1h'",
                                 "checkpoint_completion_target": "0.9"})
    standby.restart()
    primary.sql("CREATE TABLE big AS SELECT g, repeat('x', 100) AS pad "
                "FROM generate_series(1, 150000) g")   # many dirty buffers: a slow checkpoint
    primary.wait_for_replay(standby)
    standby.promote()
    primary.sql("INSERT INTO big VALUES (-1, 'old primary only')")
    primary.stop()
    stale = standby.scalar("SELECT timeline_id FROM pg_control_checkpoint()")
    source = LibpqSource(standby.conninfo())
    try:
        facts = _gather(primary, source)
    finally:
        source.close()
    if major <= 15:
        assert stale == 1, "the scenario must catch the window before the checkpoint"
    assert facts.source_timeline == 2
    assert facts.rewind_required and facts.divergence.tli == 1


def test_source_promoted_twice(bed, major):
    primary, standby = bed.primary_and_standby(major)
    primary.sql("CREATE TABLE t AS SELECT generate_series(1, 1000) AS id")
    primary.wait_for_replay(standby)
    standby.promote()
    standby.checkpoint()
    primary.sql("UPDATE t SET id = -id WHERE id < 10")
    primary.stop()
    cascade = bed.adopt(standby.create_standby("cascade"))
    standby.sql("INSERT INTO t VALUES (5000)")
    standby.wait_for_replay(cascade)
    cascade.promote()
    cascade.checkpoint()
    source = LibpqSource(cascade.conninfo())
    try:
        facts = _gather(primary, source)
    finally:
        source.close()
    assert facts.source_timeline == 3
    assert [e.tli for e in facts.source_history] == [1, 2, 3]
    assert facts.divergence.tli == 1 and facts.divergence.lsn == _switchpoint(standby)[1]
    assert facts.rewind_required


def test_local_source(bed):
    fo = failover(bed, 15)
    fo.new_primary.stop()
    facts = _gather(fo.old_primary, LocalSource(str(fo.new_primary.datadir)))
    assert facts.rewind_required and facts.source_timeline == 2
    assert facts.divergence.lsn == _switchpoint(fo.new_primary)[1]


def test_different_system_is_refused(bed):
    one = bed.cluster("one", 15).init()
    two = bed.cluster("two", 15).init()
    with pytest.raises(RefusedError) as err:
        _gather(one, LocalSource(str(two.datadir)))
    assert err.value.code == "different_system"


def test_missing_history_file(bed):
    fo = failover(bed, 14)
    (fo.new_primary.datadir / "pg_wal" / "00000002.history").unlink()
    fo.new_primary.stop()
    with pytest.raises(TimelineError) as err:
        _gather(fo.old_primary, LocalSource(str(fo.new_primary.datadir)))
    assert err.value.code == "history_missing" and "00000002.history" in str(err.value)
