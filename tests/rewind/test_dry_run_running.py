"""Check mode on a running target (issue 19, item 3): a dry run, such as AWX's Check job
ahead of an approval, answers from the old primary while it still runs instead of
refusing with target_running, changes nothing (its server, its files, the new
primary's slots), and plans what a real run does once it has stopped the node."""

import re

import pytest

from support.ansible import run_module
from support.rewound import assert_follows_and_matches, rewind
from support.scenarios import failover


def _warnings(result) -> str:
    """Ansible shows a module's warnings on stderr (the result may not keep them)."""
    text = " ".join(result.get("warnings", [])) + result["_stdout"] + result["_stderr"]
    return re.sub(r"\s+", " ", text)


def _slots(node):
    return node.sql("SELECT slot_name FROM pg_replication_slots")


@pytest.mark.parametrize("major", [11, 15, 18])
def test_dry_run_answers_from_the_running_target(bed, collection, major):
    fo = failover(bed, major, stop_mode=None)
    old, new = fo.old_primary, fo.new_primary
    pid = old.postmaster_pid()

    dry = rewind(fo, check=True, target_server=old.conninfo())
    assert not dry["failed"], dry.get("msg")
    assert dry["target_running"] is True
    assert "a real run needs it stopped first" in _warnings(dry)
    # what the old primary wrote after the fork, past its latest checkpoint, is planned
    assert dry["rewind_required"] is True, dry["reason"]
    assert dry["bytes_to_fetch"] > 0 and dry["bytes_fetched"] == 0
    assert dry["discarded"]["transactions"]["committed"] > 0
    # nothing changed: the server (same postmaster, still a primary), no journal, no
    # standby configuration, no slot on the new primary
    assert old.postmaster_pid() == pid and not old.in_recovery()
    assert not (old.datadir / "pgops_rewind").exists()
    assert not (old.datadir / "standby.signal").exists()
    assert _slots(new) == []

    # the real run (after the stop a dry run cannot make) forks where the dry run said
    old.stop()
    real = rewind(fo)
    assert not real["failed"], real.get("msg")
    assert real["divergence"] == dry["divergence"]
    assert real["last_common_checkpoint"] == dry["last_common_checkpoint"]
    assert_follows_and_matches(fo)


def test_dry_run_without_target_server_says_how_far_it_read(bed, collection):
    fo = failover(bed, 15, stop_mode=None)
    fo.old_primary.checkpoint()         # its latest checkpoint is after the fork
    dry = rewind(fo, check=True)
    assert not dry["failed"], dry.get("msg")
    assert dry["target_running"] is True and dry["rewind_required"] is True
    assert "what its pg_control records (give target_server" in _warnings(dry)
    assert fo.old_primary.is_alive() and not fo.old_primary.in_recovery()


def test_a_real_run_still_refuses_a_running_target(bed, collection):
    fo = failover(bed, 15, stop_mode=None)
    result = rewind(fo, target_server=fo.old_primary.conninfo())
    assert result["failed"] and result["error_code"] == "target_running", result.get("msg")
    assert fo.old_primary.is_alive() and not fo.old_primary.in_recovery()


@pytest.mark.parametrize("major", [11, 18])
def test_info_reads_a_running_primary_past_its_checkpoint(bed, collection, major):
    """pg_rewind_info on the old primary that still runs, with no checkpoint since the
    fork: its pg_control alone says it stopped before the fork; its server says where it
    is, and the answer is the rewind a real run makes."""
    fo = failover(bed, major, stop_mode=None)
    old = fo.old_primary
    info = run_module("pg_rewind_info", {"target_pgdata": str(old.datadir),
                                         "source_server": fo.new_primary.conninfo(),
                                         "target_server": old.conninfo()})
    assert not info["failed"], info.get("msg")
    assert info["server"]["running"] and not info["server"]["in_recovery"]
    assert (info["rewind_required"], info["plan"]["path"]) == (True, "rewind"), info["reason"]
    assert info["discarded"]["transactions"]["committed"] > 0
    assert old.postmaster_pid() and not old.in_recovery()
