"""The role pgops.rewind.pg_rewind on real clusters: whatever state the old primary is in,
it ends up streaming from the new primary with the same data; a second run changes nothing."""

import os

import pytest

from support.ansible import run_playbook
from support.compare import compare
from support.digest import datadir_digest, differences
from support.env import REPO
from support.scenarios import Failover, failover, switchover

PLAYBOOK = REPO / "tests" / "role" / "rejoin.yml"


def _vars(fo: Failover, **extra):
    old, new = fo.old_primary, fo.new_primary
    role_vars = {
        "pg_rewind_pgdata": str(old.datadir),
        "pg_rewind_bindir": str(old.bindir),
        "pg_rewind_local_host": "127.0.0.1",
        "pg_rewind_port": old.port,
        "pg_rewind_source_host": "127.0.0.1",
        "pg_rewind_source_port": new.port,
        "pg_rewind_sync": False,
        "pg_rewind_wait_timeout": 120,
        "pg_rewind_become_method": "su" if os.geteuid() == 0 else "sudo",
    }
    role_vars.update(extra)
    return role_vars


def _play(fo, check=False, **extra):
    result = run_playbook(str(PLAYBOOK), _vars(fo, **extra), check=check, diff=check)
    return result


def _assert_rejoined(fo):
    old, new = fo.old_primary, fo.new_primary
    old.running = True
    assert old.in_recovery()
    assert new.scalar("SELECT state FROM pg_stat_replication") == "streaming"
    new.sql("CREATE TABLE IF NOT EXISTS after_role (id int)")
    new.sql("INSERT INTO after_role VALUES (1)")
    new.wait_for_replay(old)
    same = compare(new, old, catalogs=True)
    assert same.equal, str(same)


def _changed(result):
    assert result["rc"] == 0, result["stdout"][-6000:] + result["stderr"][-3000:]
    return result["recap"]["localhost"]["changed"]


@pytest.mark.parametrize("major", [11, 15, 18])
def test_cleanly_stopped_node_then_idempotent(bed, collection, major):
    fo = failover(bed, major)
    before = datadir_digest(fo.old_primary.datadir)
    dry = _play(fo, check=True)
    assert _changed(dry) > 0
    assert differences(before, datadir_digest(fo.old_primary.datadir)) == []
    assert not fo.old_primary.is_alive()

    assert _changed(_play(fo)) > 0
    _assert_rejoined(fo)
    again = _play(fo)
    assert _changed(again) == 0, again["stdout"][-4000:]


def test_crashed_node(bed, collection):
    fo = failover(bed, 16, stop_mode="immediate")
    assert _changed(_play(fo)) > 0
    _assert_rejoined(fo)


def test_node_still_running_as_primary(bed, collection):
    fo = failover(bed, 13, stop_mode=None)
    assert fo.old_primary.is_alive() and not fo.old_primary.in_recovery()
    result = _play(fo)
    assert _changed(result) > 0
    assert "Stop the node with pg_ctl" in result["stdout"]
    _assert_rejoined(fo)


def test_healthy_standby_is_left_alone(bed, collection):
    primary, standby = bed.primary_and_standby(17)
    primary.sql("CREATE TABLE t AS SELECT 1 AS x")
    primary.wait_for_replay(standby)
    fo = Failover(standby, primary)
    first = _play(fo)          # takes over the standby configuration
    assert first["rc"] == 0, first["stdout"][-4000:]
    pid = standby.postmaster_pid()
    second = _play(fo)
    assert _changed(second) == 0, second["stdout"][-4000:]
    assert standby.postmaster_pid() == pid, "the standby was not restarted"


def test_no_rewind_needed_only_configures(bed, collection):
    fo = switchover(bed, 12)
    result = _play(fo, pg_rewind_standby_settings="include_file",
                   pg_rewind_primary_slot_name="rejoined", pg_rewind_create_slot=True)
    assert _changed(result) > 0
    assert "no rewind was needed" in result["stdout"]
    assert (fo.old_primary.datadir / "pgops_rewind_standby.conf").exists()
    assert fo.new_primary.scalar(
        "SELECT active FROM pg_replication_slots WHERE slot_name = 'rejoined'") is True
    _assert_rejoined(fo)


@pytest.mark.parametrize("bad, message", [
    ({"pg_rewind_stop_mode": "slow"}, "pg_rewind_stop_mode"),
    ({"pg_rewind_port": "not-a-port"}, "pg_rewind_port"),
    ({"pg_rewind_pgdata": None}, "pg_rewind_pgdata"),
])
def test_bad_variables_are_rejected_readably(bed, collection, bad, message):
    fo = failover(bed, 15, diverge=False)
    role_vars = _vars(fo)
    role_vars.update(bad)
    role_vars = {k: v for k, v in role_vars.items() if v is not None}
    result = run_playbook(str(PLAYBOOK), role_vars)
    assert result["rc"] != 0
    assert "Validation of arguments failed" in result["stdout"]
    assert message in result["stdout"]


def test_failed_preflight_stops_nothing(bed, collection):
    """The old primary still runs; the source role may not read the new primary's files:
    the role fails before stopping the node, naming the check."""
    fo = failover(bed, 15, stop_mode=None)
    fo.new_primary.sql("CREATE ROLE weak LOGIN")
    before = fo.old_primary.postmaster_pid()
    result = _play(fo, pg_rewind_source_user="weak")
    assert result["rc"] != 0
    assert "Preflight failed" in result["stdout"] and "source_privileges" in result["stdout"]
    assert "Stop the node" not in result["stdout"]
    assert fo.old_primary.postmaster_pid() == before and not fo.old_primary.in_recovery()


def test_clone_fallback_through_the_role(bed, collection):
    """Neither checksums nor wal_log_hints: the preflight fails without the fallback (the
    node is not stopped), and with pg_rewind_fallback: clone the node is rebuilt."""
    fo = failover(bed, 15, checksums=False, wal_log_hints=False, stop_mode=None)
    refused = _play(fo)
    assert refused["rc"] != 0 and "rewind_possible" in refused["stdout"]
    assert fo.old_primary.is_alive() and not fo.old_primary.in_recovery()
    result = _play(fo, pg_rewind_fallback="clone")
    assert _changed(result) > 0
    assert "rebuilt by the clone fallback" in result["stdout"]
    _assert_rejoined(fo)
    assert any(p.name.startswith(fo.old_primary.datadir.name + ".pgops-old-")
               for p in fo.old_primary.datadir.parent.iterdir())
