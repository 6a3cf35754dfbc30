"""Issue 19 item 2: WAL gaps are never silent. A new primary that keeps no extra WAL
(wal_keep_size = 0, a 32 MB max_wal_size) and checkpoints after the failover removes
the first segments of its timeline: a rewound old primary could never replay them
("requested WAL segment ... has already been removed"). Before the first write the run
checks that every segment replay needs is obtainable, and refuses with the target
byte for byte unchanged, naming the first missing one -- or clones with fallback: clone.
Recycling that starts with the run meets the slot reserved first thing."""

import json
import os
import time

import pytest

from support.digest import datadir_digest, differences
from support.engine import run_cli
from support.load import keep_little_wal
from support.rewound import assert_follows_and_matches, rewind
from support.scenarios import failover


def _switch_segment(new) -> str:
    """The name of the new primary's first segment of timeline 2."""
    history = (new.datadir / "pg_wal" / "00000002.history").read_text().split("\t")[1]
    high, low = (int(x, 16) for x in history.strip().split("/"))
    segno = ((high << 32) | low) // (16 << 20)
    return "00000002%08X%08X" % (segno // 256, segno % 256)


def _recycle(new, rounds: int = 6) -> None:
    """Write, switch segments and checkpoint until the new timeline's first WAL is gone."""
    keep_little_wal(new)
    for round_ in range(rounds):
        new.sql("UPDATE accounts SET balance = balance + %s WHERE id %% 40 = 0", (round_,))
        new.sql("SELECT pg_switch_wal()")
        new.checkpoint()


def _fork_wal_gone(bed, major):
    fo = failover(bed, major)
    first = _switch_segment(fo.new_primary)
    _recycle(fo.new_primary)
    assert not (fo.new_primary.datadir / "pg_wal" / first).exists()
    return fo, first


def _slots(node) -> dict:
    return dict(node.sql("SELECT slot_name, active FROM pg_replication_slots"))


@pytest.mark.parametrize("major", [12, 15, 18])
def test_fork_wal_gone_before_the_run_is_refused_untouched(bed, collection, major):
    fo, first = _fork_wal_gone(bed, major)
    info = run_cli("info", {"target_pgdata": str(fo.old_primary.datadir),
                            "source_server": fo.new_primary.conninfo()})
    assert info["_rc"] == 0, info
    checks = {c["check"]: c for c in info["preflight"]}
    assert checks["wal_available"]["ok"] is False and first in checks["wal_available"]["message"]
    assert checks["rewind_possible"]["ok"] is False and info["plan"]["path"] == "clone"
    before = datadir_digest(fo.old_primary.datadir)
    result = rewind(fo)
    assert result["failed"] and result["error_code"] == "replay_wal_missing", result
    assert first in result["msg"], result["msg"]
    assert "restore_command" in result["hint"] and "fallback: clone" in result["hint"]
    assert differences(before, datadir_digest(fo.old_primary.datadir)) == []
    assert _slots(fo.new_primary) == {}, "the refused run dropped its slot"


@pytest.mark.parametrize("major", [12, 15, 18])
def test_fork_wal_gone_with_fallback_clone_the_clone_streams(bed, collection, major):
    fo, _first = _fork_wal_gone(bed, major)
    result = rewind(fo, fallback="clone", sync=False)
    assert not result.get("failed"), result
    assert result["path"] == "clone" and "replay" in result["clone_reason"], result
    assert_follows_and_matches(fo)


def _paused_run(bed, fo, moment):
    os.chmod(bed.home, 0o777)
    marker = bed.home / "paused"
    params = {"target_pgdata": str(fo.old_primary.datadir), "write_recovery_conf": True,
              "source_server": fo.new_primary.conninfo(), "sync": False}
    proc = run_cli("rewind", params, fault="pause@%s:%s" % (moment, marker), background=True)
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert proc.poll() is None, proc.stdout.read() + proc.stderr.read()
        assert time.monotonic() < deadline, "the rewind never reached %s" % moment
        time.sleep(0.02)
    return proc, marker


@pytest.mark.parametrize("major", [12, 15, 18])
@pytest.mark.parametrize("moment", ["phase facts", "wal reserved"])
def test_recycling_as_the_run_starts_streams_or_refuses_untouched(
        bed, collection, major, moment):
    """The new primary recycles while the run begins: at its very start (before the
    slot: the fork's WAL goes; the run must refuse untouched) or just after the slot is
    made (the slot keeps it: the node must stream)."""
    fo = failover(bed, major)
    before = datadir_digest(fo.old_primary.datadir)
    proc, marker = _paused_run(bed, fo, moment)
    _recycle(fo.new_primary)
    marker.unlink()
    out = proc.stdout.read()
    proc.wait(timeout=600)
    result = json.loads(out)
    if moment == "wal reserved":
        assert proc.returncode == 0, result
        assert_follows_and_matches(fo)
        return
    if proc.returncode == 0:
        assert_follows_and_matches(fo)
    else:
        assert result["error_code"] == "replay_wal_missing", result
        assert differences(before, datadir_digest(fo.old_primary.datadir)) == []
