"""The source misbehaves in the middle of a rewind: the connection is cut, the server
restarts, or it is promoted again. Each is detected and reported clearly; the target
stays unstartable as a primary; running the rewind again completes it."""

import json
import os
import time

import pytest

from support.digest import datadir_digest, differences
from support.engine import run_cli
from support.rewound import assert_follows_and_matches
from support.scenarios import Failover, diverge_old_primary, failover, seed

# The first block of data written: the copy is under way (the fetch connections are open,
# batches in flight) and most of it is still to come. (A step number would move with
# every change that adds steps before the copy.)
PAUSE_AT = "write "


def _paused_rewind(bed, fo, source, **extra):
    """Start the rewind, pausing it in the middle of the copy; returns (process, marker)."""
    os.chmod(bed.home, 0o777)
    marker = bed.home / "paused"
    params = {"target_pgdata": str(fo.old_primary.datadir), "source_server": source.conninfo(),
              "write_recovery_conf": True, "sync": False, **extra}
    proc = run_cli("rewind", params, fault="pause@%s:%s" % (PAUSE_AT, marker), background=True)
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline, "the rewind never reached the pause"
        time.sleep(0.05)
    return proc, marker, params


def _finish_run(proc, marker):
    marker.unlink()
    out = proc.stdout.read()
    proc.wait(timeout=600)
    return proc.returncode, json.loads(out)


def _cannot_start_as_primary(node):
    proc = node.pg_ctl("-l", node.logfile, "-w", "-t", "30", "start", check=False)
    assert proc.returncode != 0 and not node.is_alive()


def _complete(fo, params) -> dict:
    result = run_cli("rewind", params)
    assert result["_rc"] == 0, result
    assert result["resumed"] is True
    assert_follows_and_matches(fo)
    return result


@pytest.mark.parametrize("major", [13, 17])
def test_connection_dropped_mid_copy(bed, collection, major):
    fo = failover(bed, major)
    proc, marker, params = _paused_rewind(bed, fo, fo.new_primary)
    killed = fo.new_primary.scalar(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE application_name = 'pgops_rewind'")
    assert killed >= 1
    rc, result = _finish_run(proc, marker)
    assert rc == 1 and result["error_code"] == "source_changed", result
    assert "lost the connection" in result["msg"] and "run the same task again" in result["msg"]
    _cannot_start_as_primary(fo.old_primary)
    _complete(fo, params)


def test_source_restarted_mid_copy_with_a_higher_setting(bed, collection):
    """The operator raises max_connections on the new primary, which takes a restart,
    while the rewind copies: the run stops clearly; the rerun completes it and raises
    the rewound node's setting from the restarted source's pg_control, so that the
    standby starts (a hot standby needs at least the primary's value)."""
    fo = failover(bed, 16)
    proc, marker, params = _paused_rewind(bed, fo, fo.new_primary,
                                          bindir=str(fo.old_primary.bindir))
    fo.new_primary.sql("ALTER SYSTEM SET max_connections = 60")
    fo.new_primary.restart()
    rc, result = _finish_run(proc, marker)
    assert rc == 1 and result["error_code"] == "source_changed", result
    _cannot_start_as_primary(fo.old_primary)
    done = _complete(fo, params)
    assert done["settings_raised"] == {"max_connections": {"from": 40, "to": 60}}, done
    assert fo.old_primary.scalar("SHOW max_connections") == "60"


def test_source_promoted_again_mid_rewind(bed, collection):
    """The source is a standby of the new primary and is itself promoted while the
    rewind runs: its timeline changes under the rewind."""
    primary, standby = bed.primary_and_standby(15)
    seed(primary)
    primary.wait_for_replay(standby)
    standby.promote()
    diverge_old_primary(primary)
    primary.stop()
    second = bed.adopt(standby.create_standby("second"))
    standby.sql("INSERT INTO history (note) VALUES ('before the second promotion')")
    standby.wait_for_replay(second)
    fo = Failover(primary, second)
    proc, marker, params = _paused_rewind(bed, fo, second)
    second.promote()
    rc, result = _finish_run(proc, marker)
    assert rc == 1 and result["error_code"] == "source_timeline_changed", result
    _cannot_start_as_primary(primary)
    _complete(fo, params)


def test_source_lost_while_the_scan_runs(bed, collection):
    """The plan's listings and checksums are taken while the WAL scan runs (survey.py):
    the source failing under them is a refusal that leaves the target as it was. The
    next run, held at the start of its scan, has already checksummed the source's
    files meanwhile, and completes."""
    fo = failover(bed, 15)
    before = datadir_digest(fo.old_primary.datadir)
    os.chmod(bed.home, 0o777)
    marker, progress = bed.home / "paused", bed.home / "progress.json"
    params = {"target_pgdata": str(fo.old_primary.datadir),
              "source_server": fo.new_primary.conninfo(), "write_recovery_conf": True,
              "sync": False, "progress_file": str(progress)}
    proc = run_cli("rewind", params, fault="pause@survey:%s" % marker, background=True)
    _wait_for(proc, lambda: marker.exists() and progress.exists()
              and json.loads(progress.read_text())["phase"] == "plan",
              "the scan did not end while the survey waited")
    assert fo.new_primary.scalar(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE application_name = 'pgops_rewind'") >= 1
    rc, result = _finish_run(proc, marker)
    assert rc == 1 and result["error_code"] == "source_changed", result
    assert "list the source's files" in result["msg"], result["msg"]
    assert differences(before, datadir_digest(fo.old_primary.datadir)) == []

    proc = run_cli("rewind", params, fault="pause@phase wal_scan:%s" % marker,
                   background=True)
    _wait_for(proc, lambda: marker.exists() and fo.new_primary.scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pgops_rewind' "
        "AND state = 'idle' AND query LIKE '%%sha256%%'") == 1,
        "the source's files were not checksummed while the scan was held")
    rc, result = _finish_run(proc, marker)
    assert rc == 0 and not result.get("resumed") and result["files_identical"] > 0, result
    assert_follows_and_matches(fo)


def _wait_for(proc, condition, failure):
    deadline = time.monotonic() + 120
    while not condition():
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline, failure
        time.sleep(0.05)
