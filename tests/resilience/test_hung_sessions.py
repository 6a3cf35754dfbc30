"""Bounded time for every session, not only the copy's (issue 18, item 2): a server
frozen with SIGSTOP (connections accepted, nothing answers) while the rewind creates
its replication slot, while a failed run drops it, while the slot is dropped after the
node streams, and while pg_rewind_info reads the target's own server status. Each
ends within the bound its timeouts give, with a clear error and no password in it;
after SIGCONT, running the same thing again completes.

The freeze falls between the session's connection and the request (a `pause@` fault
at the moment named in the engine), so the request itself is what hangs: that is the
case no connect_timeout, statement_timeout or TCP keepalive ends.
"""

import json
import os
import subprocess
import time

import pytest

from ansible_collections.pgops.rewind.plugins.module_utils.source.connection import (
    WATCHDOG_GRACE)
from ansible_collections.pgops.rewind.plugins.module_utils.standby.walreserve import (
    WalReservation)
from ansible_collections.pgops.rewind.plugins.module_utils.target.server_status import (
    STATUS_REQUEST_TIMEOUT)

from support.digest import datadir_digest, differences
from support.engine import call_engine, run_cli
from support.env import TEST_PASSWORD
from support.freeze import frozen
from support.rewound import assert_follows_and_matches
from support.scenarios import failover

SOURCE_TIMEOUT = 3
SLACK = 10          # process start, the shared CPU, the run's own clean-up
GIVE_UP = 120       # a run still going then would hang for good


def _with_password(node) -> str:
    """The node's conninfo with a password (trust ignores it; every message must too)."""
    return "%s password=%s" % (node.conninfo(), TEST_PASSWORD)


def _slots(node) -> dict:
    return dict(node.sql("SELECT slot_name, active FROM pg_replication_slots"))


def _paused(bed, start, moment: str):
    """start(fault) runs in the background and pauses at `moment`; returns (process,
    marker) once it waits there."""
    os.chmod(bed.home, 0o777)
    marker = bed.home / "paused"
    proc = start("pause@%s:%s" % (moment, marker))
    deadline = time.monotonic() + 180
    while not marker.exists():
        assert proc.poll() is None, proc.stdout.read() + proc.stderr.read()
        assert time.monotonic() < deadline, "the run never reached %s" % moment
        time.sleep(0.05)
    return proc, marker


def _frozen_at(node, proc, marker) -> tuple:
    """Freeze `node`, let the paused run go on, wait for its end; (result, seconds from
    the release to the end, everything the process printed)."""
    with frozen(node):
        released = time.monotonic()
        marker.unlink()
        proc.stdin = None               # written and closed when the run started
        try:
            out, err = proc.communicate(timeout=GIVE_UP)
        except subprocess.TimeoutExpired:
            proc.kill()                 # as before the connection factory: hung for good
            out, err = proc.communicate()
            pytest.fail("still running %d s after the server froze: %s" % (GIVE_UP, err))
        took = time.monotonic() - released
    return json.loads(out), took, out + err


@pytest.mark.parametrize("major", [11, 15, 18])
def test_source_frozen_while_the_slot_is_created_then_dropped(bed, collection, major):
    fo = failover(bed, major)
    before = datadir_digest(fo.old_primary.datadir)
    params = {"target_pgdata": str(fo.old_primary.datadir), "sync": False,
              "source_server": _with_password(fo.new_primary), "write_recovery_conf": True,
              "primary_conninfo": fo.new_primary.conninfo(), "keep_slot": False,
              "source_timeout": SOURCE_TIMEOUT}
    proc, marker = _paused(bed, lambda fault: run_cli("rewind", params, fault=fault,
                                                      background=True), "slot create")
    result, took, printed = _frozen_at(fo.new_primary, proc, marker)
    print("frozen while the slot was created: the run ended %.1f s later" % took)
    assert proc.returncode == 1 and result["error_code"] == "source_timeout", result
    assert "the source did not answer within %d s (source_timeout) while trying to create " \
           "replication slot" % SOURCE_TIMEOUT in result["msg"], result["msg"]
    assert took < SOURCE_TIMEOUT + WATCHDOG_GRACE + SLACK, took
    assert TEST_PASSWORD not in printed
    assert differences(before, datadir_digest(fo.old_primary.datadir)) == []

    again = run_cli("rewind", params)
    assert again["_rc"] == 0 and again["changed"] and "resumed" not in again, again
    slot = again["slot"]["name"]
    assert list(_slots(fo.new_primary)) == [slot]       # made by the rerun, or reused
    assert_follows_and_matches(fo)

    # The node streams (without the slot: keep_slot false): the slot is dropped, as the
    # role does then (pg_physical_slot state=absent), while the source is frozen.
    drop = {"conninfo": _with_password(fo.new_primary), "name": slot, "present": False,
            "statement_timeout": SOURCE_TIMEOUT}
    proc, marker = _paused(bed, lambda fault: call_engine(
        "standby.slots.ensure_physical_slot", drop, fault=fault, background=True), "slot drop")
    result, took, printed = _frozen_at(fo.new_primary, proc, marker)
    print("frozen while the slot was dropped: the call ended %.1f s later" % took)
    assert proc.returncode == 1 and result["error_code"] == "source_timeout", result
    assert "the new primary did not answer within %d s (source_timeout) while trying to drop " \
           "replication slot %s" % (SOURCE_TIMEOUT, slot) in result["msg"], result["msg"]
    assert took < SOURCE_TIMEOUT + WATCHDOG_GRACE + SLACK, took
    assert TEST_PASSWORD not in printed

    dropped = call_engine("standby.slots.ensure_physical_slot", drop)
    assert dropped["_rc"] == 0 and dropped["slot_name"] == slot, dropped
    assert _slots(fo.new_primary) == {}


@pytest.mark.parametrize("major", [11, 15, 18])
def test_source_frozen_while_a_failed_run_drops_its_slot(bed, collection, major):
    fo = failover(bed, major)
    victim = fo.old_primary.datadir / "pg_xact" / "0000"
    owner = fo.old_primary.datadir.stat()
    before = datadir_digest(fo.old_primary.datadir)
    params = {"target_pgdata": str(fo.old_primary.datadir), "sync": False,
              "source_server": _with_password(fo.new_primary), "write_recovery_conf": True,
              "primary_conninfo": fo.new_primary.conninfo(), "source_timeout": SOURCE_TIMEOUT}
    os.chown(victim, 0, 0)                  # refused once the plan is made: target_not_writable
    try:
        proc, marker = _paused(bed, lambda fault: run_cli("rewind", params, fault=fault,
                                                          background=True), "slot drop")
        result, took, printed = _frozen_at(fo.new_primary, proc, marker)
    finally:
        os.chown(victim, owner.st_uid, owner.st_gid)
    print("frozen while the failed run dropped its slot: it ended %.1f s later" % took)
    assert proc.returncode == 1 and result["error_code"] == "target_not_writable", result
    quick = WalReservation.QUICK_SECONDS
    assert "could not be dropped (the source did not answer within %d s (after a failed run) " \
           "while trying to drop replication slot" % quick in result["msg"], result["msg"]
    assert took < quick + WATCHDOG_GRACE + SLACK, took
    assert TEST_PASSWORD not in printed
    assert differences(before, datadir_digest(fo.old_primary.datadir)) == []

    again = run_cli("rewind", params)
    assert again["_rc"] == 0 and again["changed"] and "resumed" not in again, again
    assert list(_slots(fo.new_primary)) == [again["slot"]["name"]]
    assert_follows_and_matches(fo)


@pytest.mark.parametrize("major", [11, 15, 18])
def test_target_server_frozen_during_the_status_check(bed, collection, major):
    """pg_rewind_info with target_server: the old primary still runs (the role's
    preflight asks before it stops anything) and hangs while it is asked."""
    fo = failover(bed, major, stop_mode=None)
    old = fo.old_primary
    params = {"target_pgdata": str(old.datadir), "target_server": _with_password(old),
              "source_server": _with_password(fo.new_primary),
              "source_timeout": SOURCE_TIMEOUT}
    proc, marker = _paused(bed, lambda fault: run_cli("info", params, fault=fault,
                                                      background=True), "server status")
    result, took, printed = _frozen_at(old, proc, marker)
    print("target's server frozen during its status check: info ended %.1f s later" % took)
    assert proc.returncode == 0, result
    assert result["server"]["running"] is True, result["server"]
    assert result["server"]["error_code"] == "source_timeout", result["server"]
    assert "the target's server did not answer within %d s (status check) while trying to " \
           "read its status" % STATUS_REQUEST_TIMEOUT in result["server"]["error"], \
        result["server"]
    assert took < STATUS_REQUEST_TIMEOUT + WATCHDOG_GRACE + SLACK, took
    assert TEST_PASSWORD not in printed

    again = run_cli("info", params)
    assert again["_rc"] == 0 and "error" not in again["server"], again
    assert again["server"]["running"] and again["server"]["in_recovery"] is False
    assert again["server"]["timeline"] == 1
    old.stop()
    rewound = run_cli("rewind", {"target_pgdata": str(old.datadir), "sync": False,
                                 "source_server": _with_password(fo.new_primary),
                                 "primary_conninfo": fo.new_primary.conninfo(),
                                 "write_recovery_conf": True})
    assert rewound["_rc"] == 0 and rewound["changed"], rewound
    assert_follows_and_matches(fo)
