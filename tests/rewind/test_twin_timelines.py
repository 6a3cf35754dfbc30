"""Twin timelines: two standbys of one primary, each promoted on its own, both reach
timeline 2. Whether they share history is decided from the history files' contents
and, where those agree, from the WAL itself -- never from the timeline number alone.
Native pg_rewind answers "no rewind required" here and the node then stalls."""

import pytest

from support.ansible import run_module
from support.digest import datadir_digest, differences
from support.engine import run_cli
from support.rewound import assert_follows_and_matches, rewind
from support.scenarios import Failover, twin_promotions


def _info(fo):
    return run_module("pg_rewind_info", {"target_pgdata": str(fo.old_primary.datadir),
                                         "source_server": fo.new_primary.conninfo()})


def _ok(result):
    assert not result["failed"], "%s (%s)" % (result.get("msg"), result.get("error_code"))
    return result


@pytest.mark.parametrize("major", [12, 15, 18])
def test_twin_promoted_earlier_is_rewound_from_the_other(bed, collection, major):
    """B promoted after an update C never received, C promoted on its own, both write:
    00000002.history differs; C is rewound from the earlier switch point on timeline 1."""
    _a, b, c = twin_promotions(bed, major)
    c.stop()
    fo = Failover(c, b)
    info = _ok(_info(fo))
    assert (info["target_timeline"], info["source_timeline"]) == (2, 2)
    assert info["rewind_required"] is True and info["reason"] == "diverged", info
    assert info["twin_timeline"] is True
    c_switch = (c.datadir / "pg_wal" / "00000002.history").read_text().split("\t")[1]
    b_switch = b.scalar("SELECT pg_read_file('pg_wal/00000002.history')").split("\t")[1]
    assert c_switch != b_switch
    assert info["divergence"] == {"timeline": 1, "lsn": c_switch}    # the earlier one
    result = _ok(rewind(fo))
    assert result["changed"] is True and result["divergence"]["timeline"] == 1
    assert (c.datadir / "pg_wal" / "00000002.history").read_text().split("\t")[1] == b_switch
    assert_follows_and_matches(fo)
    assert c.scalar("SELECT count(*) FROM accounts WHERE note = 'only B'") > 3000   # B's update


def test_twins_promoted_at_the_same_location_are_told_apart_by_their_wal(bed, collection):
    """Both received everything the old primary wrote, so both history files say the
    same; the first WAL record of each timeline 2 (its promotion) does not."""
    _a, b, c = twin_promotions(bed, 16, same_switch_point=True)
    c.stop()
    assert (c.datadir / "pg_wal" / "00000002.history").read_text() == \
        b.scalar("SELECT pg_read_file('pg_wal/00000002.history')")
    fo = Failover(c, b)
    info = _ok(_info(fo))
    assert info["rewind_required"] is True and info["twin_timeline"] is True, info
    assert info["wal_compared"][0]["what"] == "start of timeline 2"
    assert info["wal_compared"][0]["result"] == "different"
    _ok(rewind(fo))
    assert_follows_and_matches(fo)


@pytest.mark.parametrize("side", ["target", "source"])
def test_missing_history_file_is_refused_not_called_same(bed, collection, side):
    _a, b, c = twin_promotions(bed, 15)
    c.stop()
    node = c if side == "target" else b
    (node.datadir / "pg_wal" / "00000002.history").unlink()
    before = datadir_digest(c.datadir)
    fo = Failover(c, b)
    for result in (_info(fo), rewind(fo)):
        assert result["failed"] and result["error_code"] == "history_not_comparable", result
        assert "00000002.history" in result["msg"] and side in result["msg"]
    assert differences(before, datadir_digest(c.datadir)) == []


def test_twin_rewind_killed_mid_copy_is_completed_by_the_next_run(bed, collection):
    """The fork the WAL evidence found (earlier than the identical history files say)
    is the one the journal keeps: the rerun completes against it."""
    _a, b, c = twin_promotions(bed, 17, same_switch_point=True)
    c.stop()
    fo = Failover(c, b)
    params = {"target_pgdata": str(c.datadir), "source_server": b.conninfo(),
              "write_recovery_conf": True, "sync": False}
    killed = run_cli("rewind", params, fault="kill:6")
    assert killed["_rc"] == -9, killed
    assert (c.datadir / "pgops_rewind" / "pg_control.target").exists()
    resumed = run_cli("rewind", params)
    assert resumed["_rc"] == 0 and resumed.get("resumed") is True, resumed
    assert resumed["divergence"]["timeline"] == 1
    assert_follows_and_matches(fo)
