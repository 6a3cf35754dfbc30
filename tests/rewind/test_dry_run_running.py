"""Check mode on a running target (issue 19, item 3): a dry run, such as AWX's Check job
ahead of an approval, answers from the old primary while it still runs instead of
refusing with target_running, changes nothing (its server, its files, the new
primary's slots), and plans what a real run does once it has stopped the node."""

import re

import pytest

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
    assert "up to its latest checkpoint (give target_server" in _warnings(dry)
    assert fo.old_primary.is_alive() and not fo.old_primary.in_recovery()


def test_a_real_run_still_refuses_a_running_target(bed, collection):
    fo = failover(bed, 15, stop_mode=None)
    result = rewind(fo, target_server=fo.old_primary.conninfo())
    assert result["failed"] and result["error_code"] == "target_running", result.get("msg")
    assert fo.old_primary.is_alive() and not fo.old_primary.in_recovery()
