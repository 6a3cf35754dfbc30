"""The role and the slot that reserves the new primary's WAL: dropped once the node
streams when it is not kept, dropped when a later step fails, and a source role that
may not create it is refused before the node is stopped."""

import re

import pytest

from role.test_role import _assert_rejoined, _changed, _play
from support.scenarios import failover


def _slots(node) -> dict:
    return dict(node.sql("SELECT slot_name, active FROM pg_replication_slots"))


def test_slot_not_kept_is_dropped_once_the_node_streams(bed, collection):
    fo = failover(bed, 13)
    result = _play(fo, pg_rewind_keep_slot=False)
    assert _changed(result) > 0
    assert "Drop the slot that reserved the WAL until the node streamed" in result["stdout"]
    _assert_rejoined(fo)
    assert _slots(fo.new_primary) == {}
    assert "primary_slot_name" not in (fo.old_primary.datadir / "postgresql.auto.conf").read_text()
    assert _changed(_play(fo, pg_rewind_keep_slot=False)) == 0


def test_later_failure_drops_the_slot_the_run_created(bed, collection):
    fo = failover(bed, 15)
    result = _play(fo, pg_rewind_pg_ctl_log="/nonexistent/pg_ctl.log",
                   pg_rewind_primary_slot_name="db1")
    assert result["rc"] != 0
    out = result["stdout"]
    assert "Rewind the node to the new primary's history" in out       # the rewind ran ...
    assert "Start the node with pg_ctl failed" in out                   # ... the start did not
    assert "Drop the replication slot this run created" in out
    assert _slots(fo.new_primary) == {}


def test_source_role_without_replication_stops_nothing(bed, collection):
    fo = failover(bed, 16, stop_mode=None)          # the old primary still runs
    fo.new_primary.sql("CREATE ROLE reader LOGIN;"
                       "GRANT EXECUTE ON FUNCTION pg_catalog.pg_ls_dir(text, boolean, boolean), "
                       "pg_catalog.pg_stat_file(text, boolean), "
                       "pg_catalog.pg_read_binary_file(text), "
                       "pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean) TO reader")
    result = _play(fo, pg_rewind_source_user="reader", pg_rewind_replication_user="postgres")
    assert result["rc"] != 0
    assert "source_no_replication" in result["stdout"] and "REPLICATION" in result["stdout"]
    assert "Stop the node with pg_ctl" not in result["stdout"]
    assert fo.old_primary.is_alive() and not fo.old_primary.in_recovery()
    assert _slots(fo.new_primary) == {}


@pytest.mark.parametrize("major", [11, 15, 18])
def test_wait_timeout_during_a_long_replay_keeps_the_slot_the_standby_streams_through(
        bed, collection, major):
    """A wait that runs out while the started node still replays (the new primary wrote a
    lot after the failover, and pg_rewind_wait_timeout is tiny) fails the run, but the
    node keeps replaying and then streams through the slot it is configured with: the
    rescue must not drop that slot."""
    fo = failover(bed, major)
    old, new = fo.old_primary, fo.new_primary
    new.sql("CREATE TABLE bulk AS SELECT g, repeat('x', 100) AS pad "
            "FROM generate_series(1, 3000000) g")
    result = _play(fo, pg_rewind_wait_timeout=1, pg_rewind_primary_slot_name="db1")
    assert result["rc"] != 0, result["stdout"][-5000:]
    out = result["stdout"]
    assert "Rewind the node to the new primary's history" in out
    assert "Start the node with pg_ctl" in out
    assert old.is_alive()                           # still replaying
    # The rescue does not even try to drop it (whether a drop would fail depends on
    # whether the node streams at that instant) ...
    assert re.search(r"Drop the replication slot this run created\] \**\s+skipping", out), out
    assert _slots(new).keys() == {"db1"}            # ... and it is there for the node
    assert "is kept: the node is configured to stream through it" in out
    standby_conf = "recovery.conf" if major == 11 else "postgresql.auto.conf"
    assert "primary_slot_name = 'db1'" in (old.datadir / standby_conf).read_text()
    new.wait_until(lambda: _slots(new) == {"db1": True}, timeout=600,
                   what="the node streaming through db1")
    _assert_rejoined(fo)
