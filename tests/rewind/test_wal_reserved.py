"""The WAL the rewound node needs stays on a busy new primary that keeps little of it.

The new primary keeps no extra WAL (wal_keep_size = 0, wal_keep_segments = 0 on 11
and 12; max_wal_size = 32MB) and a writer updates, switches WAL segments and
checkpoints on it throughout the rewind and for a few seconds after it. Without a
reservation the rewound node then cannot stream: the segment it asks for first is
gone ("requested WAL segment ... has already been removed",
test_without_a_slot_the_node_cannot_stream shows it). With the slot the rewind
creates before copying, it catches up, streams (through that slot) and holds the new
primary's data. A run that fails leaves no slot behind; a resumed run reuses the one
its journal records; a source role without REPLICATION is refused clearly.
"""

import json
import os
import time

import pytest

from support.digest import datadir_digest, differences
from support.engine import run_cli
from support.load import BusyWriter, keep_little_wal
from support.rewound import assert_follows_and_matches, rewind
from support.scenarios import failover

AFTER_REWIND_S = 5
PAUSE_AT = 30       # a change early in the copy


def _slots(node) -> dict:
    return dict(node.sql("SELECT slot_name, active FROM pg_replication_slots"))


def _busy_rewind(bed, fo, refusal_allowed=False, **args) -> tuple:
    """The rewind, with the writer running from the end of its first phase (facts: the
    slot is made there) to AFTER_REWIND_S after it. WAL removed before a rewind starts
    cannot be reserved by it (that is the archive's job, see docs/design.md)."""
    keep_little_wal(fo.new_primary)
    os.chmod(bed.home, 0o777)
    progress = bed.home / "progress.json"
    params = {"target_pgdata": str(fo.old_primary.datadir), "write_recovery_conf": True,
              "source_server": fo.new_primary.conninfo(), "sync": False,
              "progress_file": str(progress), **args}
    proc = run_cli("rewind", params, background=True)
    deadline = time.monotonic() + 120
    while not progress.exists() or json.loads(progress.read_text())["phase"] == "facts":
        assert proc.poll() is None, proc.stdout.read() + proc.stderr.read()
        assert time.monotonic() < deadline, "the rewind never left its facts phase"
        time.sleep(0.01)
    with BusyWriter(fo.new_primary) as writer:
        out = proc.stdout.read()
        proc.wait(timeout=600)
        time.sleep(AFTER_REWIND_S)
        rounds = writer.stop()
    result = json.loads(out)
    if not (refusal_allowed and result.get("error_code") == "replay_wal_missing"):
        assert proc.returncode == 0, result.get("msg", result)
    assert rounds >= 5, "the writer barely ran (%d rounds)" % rounds
    return result, rounds


@pytest.mark.parametrize("major", [11, 12, 15, 18])
def test_busy_new_primary_keeps_the_wal_the_node_needs(bed, collection, major):
    fo = failover(bed, major)
    result, _rounds = _busy_rewind(bed, fo)
    slot = result["slot"]
    assert slot["created"] and slot["keep"] and not slot["drop_after_streaming"]
    assert _slots(fo.new_primary) == {slot["name"]: False}
    assert_follows_and_matches(fo)
    assert _slots(fo.new_primary) == {slot["name"]: True}, "the standby streams through it"
    conf = "recovery.conf" if major < 12 else "postgresql.auto.conf"
    assert "primary_slot_name = '%s'" % slot["name"] in (fo.old_primary.datadir / conf).read_text()


def test_without_a_slot_the_node_cannot_stream(bed, collection):
    """The same scenario with reserve_wal: false (what native pg_rewind does): the
    segment the node needs first is gone before it starts. The rewind sees it when the
    segment went before the listing (issue 19: replay_wal_missing, nothing changed);
    WAL removed after the listing is what only the slot keeps."""
    fo = failover(bed, 15)
    before = datadir_digest(fo.old_primary.datadir)
    result, _rounds = _busy_rewind(bed, fo, refusal_allowed=True, reserve_wal=False)
    assert "slot" not in result and _slots(fo.new_primary) == {}
    if result.get("failed"):
        assert differences(before, datadir_digest(fo.old_primary.datadir)) == []
        return
    old = fo.old_primary
    old.pg_ctl("-l", old.logfile, "-W", "start")    # it never becomes consistent: no wait
    old.wait_until(lambda: "has already been removed" in old.logfile.read_text(), timeout=60,
                   what="the node's walreceiver to be refused its first segment")
    assert fo.new_primary.scalar("SELECT count(*) FROM pg_stat_replication "
                                 "WHERE state = 'streaming'") == 0


def _paused_rewind(bed, fo, **extra):
    os.chmod(bed.home, 0o777)
    marker = bed.home / "paused"
    params = {"target_pgdata": str(fo.old_primary.datadir),
              "source_server": fo.new_primary.conninfo(), "write_recovery_conf": True,
              "sync": False, **extra}
    proc = run_cli("rewind", params, fault="pause:%d:%s" % (PAUSE_AT, marker), background=True)
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline, "the rewind never reached the pause"
        time.sleep(0.05)
    return proc, marker, params


@pytest.mark.parametrize("major", [12, 15, 18])
def test_failed_run_leaves_no_slot_and_the_rerun_completes(bed, collection, major):
    fo = failover(bed, major)
    proc, marker, params = _paused_rewind(bed, fo)
    held = _slots(fo.new_primary)
    assert len(held) == 1, "the slot exists before the copy: %s" % held
    killed = fo.new_primary.scalar(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE application_name = 'pgops_rewind'")
    assert killed >= 1
    marker.unlink()
    out = proc.stdout.read()
    proc.wait(timeout=600)
    result = json.loads(out)
    assert proc.returncode == 1 and result["error_code"] == "source_changed", result
    assert _slots(fo.new_primary) == {}, "the failed run dropped its slot"

    again = run_cli("rewind", params)
    assert again["_rc"] == 0 and again["resumed"], again
    assert again["slot"]["created"] and again["slot"]["name"] in held
    assert list(_slots(fo.new_primary)) == list(held)
    assert_follows_and_matches(fo)


def test_killed_run_is_resumed_with_the_same_slot(bed, collection):
    fo = failover(bed, 16)
    params = {"target_pgdata": str(fo.old_primary.datadir),
              "source_server": fo.new_primary.conninfo(), "write_recovery_conf": True,
              "sync": False, "slot_name": "db1_rejoin"}
    killed = run_cli("rewind", params, fault="kill:%d" % PAUSE_AT)
    assert killed["_rc"] == -9, killed
    state = json.loads((fo.old_primary.datadir / "pgops_rewind" / "state.json").read_text())
    assert state["wal_slot"] == {"name": "db1_rejoin", "owned": True}
    assert _slots(fo.new_primary) == {"db1_rejoin": False}     # kill -9: nothing could clean up

    params["slot_name"] = "another_name"                     # the journal's slot wins
    again = run_cli("rewind", params)
    assert again["_rc"] == 0 and again["resumed"], again
    assert again["slot"]["name"] == "db1_rejoin" and not again["slot"]["created"]
    assert _slots(fo.new_primary) == {"db1_rejoin": False}
    assert_follows_and_matches(fo)
    assert _slots(fo.new_primary) == {"db1_rejoin": True}


def test_refusal_after_the_slot_was_created_drops_it(bed, collection):
    fo = failover(bed, 17)
    victim = fo.old_primary.datadir / "pg_xact" / "0000"
    before = datadir_digest(fo.old_primary.datadir)
    os.chown(victim, 0, 0)                  # found only once the plan is made
    try:
        result = rewind(fo)
    finally:
        os.chown(victim, fo.old_primary.datadir.stat().st_uid,
                 fo.old_primary.datadir.stat().st_gid)
    assert result["failed"] and result["error_code"] == "target_not_writable", result
    assert differences(before, datadir_digest(fo.old_primary.datadir)) == []
    assert _slots(fo.new_primary) == {}


def test_slot_in_use_by_another_standby_is_refused(bed, collection):
    fo = failover(bed, 14)
    fo.new_primary.sql("SELECT pg_create_physical_replication_slot('taken', true)")
    other = bed.adopt(fo.new_primary.create_standby("other", start=False))
    other.make_standby_of(fo.new_primary, slot="taken")
    other.start()
    fo.new_primary.wait_until(lambda: _slots(fo.new_primary)["taken"], what="slot in use")
    before = datadir_digest(fo.old_primary.datadir)
    result = rewind(fo, slot_name="taken")
    assert result["failed"] and result["error_code"] == "slot_in_use", result
    assert "in use by another standby" in result["msg"] and "slot_name" in result["hint"]
    assert differences(before, datadir_digest(fo.old_primary.datadir)) == []
    assert _slots(fo.new_primary) == {"taken": True}


def test_source_role_without_replication(bed, collection):
    fo = failover(bed, 16)
    fo.new_primary.sql("CREATE ROLE reader LOGIN;"
                       "GRANT EXECUTE ON FUNCTION pg_catalog.pg_ls_dir(text, boolean, boolean), "
                       "pg_catalog.pg_stat_file(text, boolean), "
                       "pg_catalog.pg_read_binary_file(text), "
                       "pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean) TO reader")
    source = "host=127.0.0.1 port=%d user=reader dbname=postgres" % fo.new_primary.port
    before = datadir_digest(fo.old_primary.datadir)
    result = rewind(fo, source_server=source, primary_conninfo=fo.new_primary.conninfo())
    assert result["failed"] and result["error_code"] == "source_no_replication", result
    assert "REPLICATION" in result["msg"] and "reserve_wal: false" in result["hint"]
    assert differences(before, datadir_digest(fo.old_primary.datadir)) == []
    assert _slots(fo.new_primary) == {}

    opted_out = rewind(fo, source_server=source, primary_conninfo=fo.new_primary.conninfo(),
                       reserve_wal=False)
    assert not opted_out["failed"], opted_out.get("msg")
    assert "slot" not in opted_out and _slots(fo.new_primary) == {}
    assert_follows_and_matches(fo)
