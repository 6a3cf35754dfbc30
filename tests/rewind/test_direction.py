"""The wrong direction: during a split brain the old primary runs on timeline 1 while the
new primary, promoted from it, runs on timeline 2. Given the new primary as the target
and the old one as the source (swapped by mistake), a rewind would discard everything
written since the failover: it is refused before anything changes, unless asked for."""

import pytest

from support.digest import datadir_digest, differences
from support.engine import run_cli
from support.rewound import assert_follows_and_matches, rewind
from support.scenarios import Failover, failover


def _swapped(fo):
    return Failover(old_primary=fo.new_primary, new_primary=fo.old_primary)


@pytest.mark.parametrize("major", [11, 15, 18])
def test_newer_primary_is_not_rewound_onto_the_older(bed, collection, major):
    fo = failover(bed, major, stop_mode=None)       # split brain: both write
    new = fo.new_primary
    info = run_cli("info", {"target_pgdata": str(new.datadir),
                            "source_server": fo.old_primary.conninfo()})
    assert info["_rc"] == 0, info
    direction = [c for c in info["preflight"] if c["check"] == "direction"]
    assert direction and direction[0]["ok"] is False, info["preflight"]
    assert "timeline 2" in direction[0]["message"] and "timeline 1" in direction[0]["message"]
    assert "Check which node is which" in direction[0]["message"]
    assert info["plan"]["path"] is None
    new.stop()
    before = datadir_digest(new.datadir)
    result = rewind(_swapped(fo))
    assert result["failed"] and result["error_code"] == "wrong_direction", result
    assert "timeline 2" in result["msg"] and "timeline 1" in result["msg"], result["msg"]
    assert "allow_older_source" in result["hint"]
    assert differences(before, datadir_digest(new.datadir)) == []
    slots = fo.old_primary.scalar("SELECT count(*) FROM pg_replication_slots")
    assert slots == 0, "a refused run leaves no slot on the source"


def test_a_deliberate_return_to_the_old_primary(bed, collection):
    fo = failover(bed, 15, stop_mode=None)
    fo.new_primary.stop()
    swapped = _swapped(fo)
    info = run_cli("info", {"target_pgdata": str(fo.new_primary.datadir),
                            "source_server": fo.old_primary.conninfo(),
                            "allow_older_source": True})
    direction = [c for c in info["preflight"] if c["check"] == "direction"][0]
    assert direction["ok"] is True and "Allowed by allow_older_source" in direction["message"]
    assert info["plan"]["path"] == "rewind"
    result = rewind(swapped, allow_older_source=True)
    assert not result.get("failed"), result
    assert result["rewind_required"] is True
    assert_follows_and_matches(swapped)
