"""No slot outlives its purpose: the slot a rewind with the module's defaults leaves
(keep_slot false, for "whoever sees the node stream") is reported by pg_rewind_info
with the WAL it holds, and dropped by the next pg_rewind_info run once the node
streams without it (issue 19, item 6)."""

import re

import pytest

from support.ansible import run_module
from support.rewound import assert_follows_and_matches, rewind
from support.scenarios import failover


def _slots(node) -> dict:
    return dict(node.sql("SELECT slot_name, active FROM pg_replication_slots"))


def _info(fo, check=False, **extra):
    params = {"target_pgdata": str(fo.old_primary.datadir),
              "source_server": fo.new_primary.conninfo()}
    params.update(extra)
    return run_module("pg_rewind_info", params, check=check)


def _warnings(result) -> str:
    """Warnings as the result or Ansible's output carries them."""
    return re.sub(r"\s+", " ", " ".join(result.get("warnings", [])) + result.get("_stdout", "")
                  + result.get("_stderr", ""))


def _rewind_with_defaults(fo) -> str:
    """The module as pg_rewind is used: no write_recovery_conf; returns the slot it left."""
    result = rewind(fo, write_recovery_conf=False)
    assert not result["failed"], result.get("msg")
    slot = result["slot"]
    assert slot["created"] and slot["drop_after_streaming"], slot
    assert _slots(fo.new_primary) == {slot["name"]: False}
    return slot["name"]


@pytest.mark.parametrize("major", [11, 15, 18])
def test_the_next_info_run_drops_the_slot_once_the_node_streams_without_it(
        bed, collection, major):
    fo = failover(bed, major)
    name = _rewind_with_defaults(fo)
    fo.old_primary.make_standby_of(fo.new_primary)      # the operator's own, without a slot
    assert_follows_and_matches(fo)
    target_server = fo.old_primary.conninfo()

    dry = _info(fo, check=True, target_server=target_server)
    assert not dry.get("failed"), dry
    assert dry["changed"] is False
    assert [(s["name"], s["unused"], s["dropped"]) for s in dry["slots"]] == [(name, True, False)]
    assert _slots(fo.new_primary) == {name: False}

    result = _info(fo)          # as pg_rewind is used: the node is asked through its socket
    assert not result.get("failed"), result
    assert result["changed"] is True
    assert [(s["name"], s["unused"], s["dropped"]) for s in result["slots"]] == \
        [(name, True, True)]
    assert _slots(fo.new_primary) == {}
    assert _info(fo, target_server=target_server)["changed"] is False


def test_a_slot_the_node_streams_through_is_kept(bed, collection):
    fo = failover(bed, 16)
    result = rewind(fo)                 # write_recovery_conf: the standby uses the slot
    assert not result["failed"], result.get("msg")
    name = result["slot"]["name"]
    assert_follows_and_matches(fo)
    fo.new_primary.wait_until(lambda: _slots(fo.new_primary) == {name: True},
                              what="the slot in use")
    info = _info(fo, target_server=fo.old_primary.conninfo())
    assert not info.get("failed"), info
    assert info["changed"] is False
    assert [(s["name"], s["active"], s["unused"]) for s in info["slots"]] == [(name, True, False)]
    assert "is inactive and holds" not in _warnings(info)
    assert _slots(fo.new_primary) == {name: True}


@pytest.mark.parametrize("major", [11, 15, 18])
def test_info_warns_about_an_inactive_slot_of_ours_with_the_wal_it_holds(
        bed, collection, major):
    fo = failover(bed, major)
    name = _rewind_with_defaults(fo)
    new = fo.new_primary
    new.sql("CREATE TABLE filler AS SELECT g, repeat('x', 200) AS pad "
            "FROM generate_series(1, 20000) g")
    info = _info(fo)                    # the node is not started: nothing to drop
    assert not info.get("failed"), info
    assert info["changed"] is False
    (slot,) = info["slots"]
    assert slot["name"] == name and slot["active"] is False and slot["dropped"] is False
    held = new.scalar("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint "
                      "FROM pg_replication_slots WHERE slot_name = %s", (name,))
    assert 4 << 20 < slot["wal_held_bytes"] <= held
    text = _warnings(info)
    assert "replication slot %s" % name in text and "is inactive and holds" in text
    assert "(%d bytes)" % slot["wal_held_bytes"] in text
    assert _slots(new) == {name: False}
