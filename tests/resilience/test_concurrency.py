"""One run at a time, and no server under a running rewind.

Two runs against one data directory (a cancelled AWX job whose module keeps running,
relaunched; two operators): the second refuses at once with `rewind_in_progress`,
naming the first, and touches nothing; the first completes correctly. A run killed
with -9 (even while its WAL scan processes live on) never blocks the next. A server
started on the target while a run plans makes the run refuse before its first write.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time

import pytest

from support.digest import datadir_digest, differences
from support.engine import run_cli
from support.rewound import assert_follows_and_matches
from support.scenarios import failover


def _params(fo, **extra):
    params = {"target_pgdata": str(fo.old_primary.datadir),
              "source_server": fo.new_primary.conninfo(), "write_recovery_conf": True,
              "sync": False, "bindir": str(fo.old_primary.bindir)}
    params.update(extra)
    return params


def _paused(bed, params, moment):
    """A run started in the background that waits at `moment` (a faults.moment name);
    returns (process, marker): removing the marker lets it go on."""
    os.chmod(bed.home, 0o777)
    marker = bed.home / ("paused-" + moment.replace(" ", "_"))
    proc = run_cli("rewind", params, fault="pause@%s:%s" % (moment, marker), background=True)
    deadline = time.monotonic() + 180
    while not marker.exists():
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline, "the run never reached %s" % moment
        time.sleep(0.05)
    return proc, marker


def _finish(proc, marker):
    marker.unlink()
    return _result(proc)


def _result(proc):
    out = proc.stdout.read()
    proc.wait(timeout=600)
    result = json.loads(out) if out.strip() else {"_stderr": proc.stderr.read()}
    result["_rc"] = proc.returncode
    return result


def _frozen_pids(node):
    """The target's server processes (postmaster and children)."""
    pids = {node.postmaster_pid()}
    found = subprocess.run(["pgrep", "-P", str(node.postmaster_pid())], capture_output=True,
                           text=True, check=False)
    pids.update(int(p) for p in found.stdout.split())
    return sorted(pids)


def test_second_run_refused_while_the_first_runs(bed, collection, major):
    fo = failover(bed, major)
    target = fo.old_primary.datadir
    first, marker = _paused(bed, _params(fo), "phase wal_scan")
    before = datadir_digest(target)
    started = time.time()
    second = run_cli("rewind", _params(fo))
    assert time.time() - started < 30, "the second run must refuse at once"
    assert second["_rc"] == 1 and second["error_code"] == "rewind_in_progress", second
    holder = second["rewind_in_progress"]
    assert holder["pid"] == first.pid and holder["host"] == socket.gethostname()
    assert holder["started"] and holder["user"]
    assert "pid %d" % first.pid in second["msg"] and holder["started"] in second["msg"]
    dry = run_cli("rewind", dict(_params(fo), check_mode=True))
    assert dry["error_code"] == "rewind_in_progress", dry       # check mode takes it too
    info = run_cli("info", {"target_pgdata": str(target),
                            "source_server": fo.new_primary.conninfo()})
    assert info["error_code"] == "rewind_in_progress", info
    assert info["rewind_in_progress"]["pid"] == first.pid
    assert differences(before, datadir_digest(target)) == []
    result = _finish(first, marker)
    assert result["_rc"] == 0 and result["rewind_required"] is True, result
    again = run_cli("info", {"target_pgdata": str(target)})
    assert again["_rc"] == 0 and again["rewind_in_progress"] is None, again
    assert_follows_and_matches(fo)


def test_runs_started_together(bed, collection):
    """No pause: both start at the same moment; exactly one does the work."""
    fo = failover(bed, 16)
    procs = [run_cli("rewind", _params(fo), background=True) for _unused in range(2)]
    results = [_result(proc) for proc in procs]
    codes = sorted(r.get("error_code", "ok") for r in results)
    assert codes == ["ok", "rewind_in_progress"], results
    assert_follows_and_matches(fo)


def test_role_preflight_stops_while_a_run_holds_the_target(bed, collection):
    from role.test_role import _play
    fo = failover(bed, 15)
    first, marker = _paused(bed, _params(fo), "phase wal_scan")
    before = datadir_digest(fo.old_primary.datadir)
    play = _play(fo)
    assert play["rc"] != 0
    assert "rewind_in_progress" in play["stdout"] and "pid %d" % first.pid in play["stdout"]
    assert differences(before, datadir_digest(fo.old_primary.datadir)) == []
    assert not fo.old_primary.is_alive()
    assert _finish(first, marker)["_rc"] == 0
    assert_follows_and_matches(fo)


def _split_scan_failover(bed, major):
    """A failover whose old primary wrote more than 8 (1 MB) segments after the fork:
    its WAL scan runs in worker processes."""
    fo = failover(bed, major, diverge=True, wal_segsize_mb=1)
    fo.old_primary.start()
    fo.old_primary.sql("INSERT INTO growing SELECT g, repeat('w', 200) "
                       "FROM generate_series(1, 60000) g")
    fo.old_primary.stop()
    return fo


def test_killed_run_does_not_block_the_next(bed, collection, major):
    """Killed while its WAL scan processes still run (and keep running): the lock is
    the killed run's, not theirs, so the next run proceeds and completes."""
    fo = _split_scan_failover(bed, major)
    first, marker = _paused(bed, _params(fo), "wal scan part")
    workers = [int(p) for p in subprocess.run(["pgrep", "-P", str(first.pid)], text=True,
                                              capture_output=True, check=False).stdout.split()]
    assert workers, "the WAL scan ran in one process: the test needs worker processes"
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=60)
    try:
        assert any(_alive(pid) for pid in workers)      # they outlive the killed run
        result = run_cli("rewind", _params(fo))
        assert result["_rc"] == 0 and result["rewind_required"] is True, result
    finally:
        for pid in workers:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        marker.unlink(missing_ok=True)
    assert_follows_and_matches(fo)


@pytest.mark.parametrize("major", [11, 18])
def test_scan_worker_killed_refuses_without_a_clone(bed, collection, major):
    """A WAL scan process killed (the OOM killer, an operator): the run refuses with
    `wal_scan_process_died` naming the signal -- not `wal_corrupt`, so `fallback: clone`
    does not rebuild the node over a healthy WAL -- changes nothing, and the same run
    again completes."""
    fo = _split_scan_failover(bed, major)
    params = _params(fo, fallback="clone")
    before = datadir_digest(fo.old_primary.datadir)
    run, marker = _paused(bed, params, "wal scan part")
    worker = int(marker.read_text().split()[0])
    assert worker != run.pid, "the pause must be in a scan worker"
    os.kill(worker, signal.SIGKILL)
    marker.unlink()             # the other worker, paused or not, goes on
    result = _result(run)
    assert result["_rc"] == 1 and result["error_code"] == "wal_scan_process_died", result
    assert "SIGKILL" in result["msg"] and "Nothing was changed" in result["msg"], result
    assert not result.get("changed") and "clone_reason" not in result, result
    assert differences(before, datadir_digest(fo.old_primary.datadir)) == []
    again = run_cli("rewind", params)
    assert again["_rc"] == 0 and again["rewind_required"] is True, again
    assert again.get("path") != "clone", again
    assert_follows_and_matches(fo)


def _alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as handle:
            return handle.read().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_server_started_during_the_wal_scan(bed, collection, major):
    """A service manager starts the target while the run scans its WAL: the run refuses
    before its first write. The server itself changes the target, so the target is
    compared from the moment it is up (frozen) to after the refusal."""
    fo = failover(bed, major)
    old = fo.old_primary
    run, marker = _paused(bed, _params(fo), "phase wal_scan")
    old.start()
    pids = _frozen_pids(old)
    for pid in pids:                     # frozen: only the run could change the target now
        os.kill(pid, signal.SIGSTOP)
    try:
        before = datadir_digest(old.datadir)
        result = _finish(run, marker)
        after = datadir_digest(old.datadir)
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)
    assert result["_rc"] == 1 and result["error_code"] == "target_running", result
    assert differences(before, after) == []
    assert not (old.datadir / "pgops_rewind").exists()
    assert (old.datadir / "global" / "pg_control").exists()
    old.stop()
    final = run_cli("rewind", _params(fo))          # stopped again: the rewind goes ahead
    assert final["_rc"] == 0, final
    assert_follows_and_matches(fo)
