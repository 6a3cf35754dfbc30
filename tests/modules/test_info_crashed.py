"""pg_rewind_info on an old primary that crashed (or still runs) after writing past
the fork: its pg_control's last checkpoint is older than the fork, its WAL is not."""

import pytest

from support.digest import datadir_digest, differences
from support.engine import run_cli
from support.scenarios import failover


@pytest.mark.parametrize("major", [11, 15, 18])
@pytest.mark.parametrize("state", ["crashed", "running"])
def test_diverged_old_primary_not_cleanly_stopped_needs_a_rewind(bed, collection, major, state):
    fo = failover(bed, major, stop_mode="immediate" if state == "crashed" else None)
    old = fo.old_primary
    if state == "running":
        old.sql("SELECT pg_switch_wal()")   # what it wrote is on disk, as after a crash
    before = datadir_digest(old.datadir) if state == "crashed" else None
    result = run_cli("info", {"target_pgdata": str(old.datadir),
                              "source_server": fo.new_primary.conninfo()})
    assert result["_rc"] == 0, result
    assert result["target"]["state"] == "in production"
    assert result["rewind_required"] is True and result["reason"] == "diverged", result
    assert result["plan"]["path"] == "rewind", result["plan"]
    assert result["changed_blocks"] > 0
    if before is not None:
        assert differences(before, datadir_digest(old.datadir)) == []
