"""A rewound node that has not been started yet is rewound again (the role rerun, a
relaunched AWX job): nothing to do, and never a refusal.

The rewound pg_control asks replay to reach the source's WAL *insert* position when the
rewind ended (as native pg_rewind does; stepped back to the page start when it is just
past a page header: test_source_end.py). WAL inserted but not yet written by the source
-- a running-transactions record its background writer logs, a non-transactional
message -- stays in its buffers until the WAL writer's next round. A second run in that
window must not read the target as ahead of the source."""

import json
import os
import time

import pytest

from ansible_collections.pgops.rewind.plugins.module_utils.pg.lsn import (
    format_lsn, last_record_end, parse_lsn)

from support.digest import datadir_digest, differences
from support.engine import run_cli
from support.freeze import one_process_frozen
from support.rewound import assert_follows_and_matches, rewind
from support.scenarios import Failover, failover, seed


def _unwritten_wal(node) -> tuple:
    """A non-transactional message: nothing writes it out but the WAL writer's next
    round. Returns the (insert, write) positions just after."""
    node.sql("SELECT pg_catalog.pg_logical_emit_message(false, 'pgops', 'not flushed')")
    return node.scalar("SELECT pg_catalog.pg_current_wal_insert_lsn()"), \
        node.scalar("SELECT pg_catalog.pg_current_wal_lsn()")


@pytest.mark.parametrize("major", [11, 15, 18])
def test_rerun_while_the_source_holds_unwritten_wal(bed, collection, major):
    fo = failover(bed, major)
    source = fo.new_primary
    os.chmod(bed.home, 0o777)
    marker = bed.home / "paused"
    params = {"target_pgdata": str(fo.old_primary.datadir), "source_server": source.conninfo(),
              "write_recovery_conf": True, "sync": False}
    proc = run_cli("rewind", params, fault="pause@phase finish:%s" % marker, background=True)
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline, "the rewind never reached its finish"
        time.sleep(0.05)
    # The WAL writer stopped, so that its round (every 200 ms; 5 s when it hibernates)
    # cannot fall in the window the test needs.
    with one_process_frozen(source, "walwriter"):
        insert, write = _unwritten_wal(source)
        assert insert != write, "the message was written at once: the test proves nothing"
        marker.unlink()
        first = json.loads(proc.stdout.read())
        proc.wait(timeout=300)
        assert proc.returncode == 0, first
        seg_size = source.scalar("SELECT bytes_per_wal_segment FROM pg_control_init()")
        assert first["min_recovery_point"]["lsn"] == format_lsn(
            last_record_end(parse_lsn(insert), seg_size)), "replay must reach the insert position"
        again = run_cli("rewind", params)
        assert source.scalar("SELECT pg_catalog.pg_current_wal_lsn()") == write, \
            "the source wrote its WAL before the second run: the test proved nothing"
    assert again["_rc"] == 0, again
    assert again["changed"] is False and again["rewind_required"] is False
    assert_follows_and_matches(fo)


def test_target_truly_ahead_of_a_lagging_standby_is_refused(bed, collection):
    """The other side of the same check: the source named is a standby that stopped
    before the primary's last writes. Nothing forked; the target is ahead."""
    primary, standby = bed.primary_and_standby(15)
    seed(primary)
    primary.wait_for_replay(standby)
    standby.stop()
    primary.sql("UPDATE accounts SET balance = balance + 1")
    primary.stop()
    standby.start()                 # in recovery, with nothing more to receive
    fo = Failover(primary, standby)
    before = datadir_digest(primary.datadir)
    result = rewind(fo)
    assert result["failed"] and result["error_code"] == "target_ahead", result
    assert "wait for it to catch up" in result["hint"]
    assert differences(before, datadir_digest(primary.datadir)) == []
