"""AWX surveys hand booleans as strings (issue 19, item 7): every boolean of the role
given as "true", "false", "yes" or "no" in extra vars (-e with JSON strings) behaves as
the boolean it spells, in the role's own tasks as in the modules it calls. Before, the
role read the string "false" as true: pg_rewind_keep_slot: "false" kept the slot (and
streamed through it) while the module was told false.

tests/quality/test_role_boolean_reads.py enumerates the booleans from the argument spec and
checks that each read goes through `| bool`."""

import json

import pytest

from support.ansible import run_playbook
from support.env import COLLECTIONS_PATH, REPO
from support.scenarios import failover

PLAYBOOK = COLLECTIONS_PATH / "ansible_collections" / "pgops" / "rewind" / "playbooks" / \
    "rejoin_old_primary.yml"
ROLE_PLAYBOOK = REPO / "tests" / "role" / "rejoin.yml"


def _inventory(bed, old, new):
    inventory = {"all": {"children": {
        "old_primary": {"hosts": {"old": {
            "ansible_connection": "local", "pg_address": "127.0.0.1", "pg_port": old.port,
            "pg_rewind_pgdata": str(old.datadir), "pg_rewind_bindir": str(old.bindir),
            "pg_rewind_local_host": "127.0.0.1", "pg_rewind_wait_timeout": 120}}},
        "new_primary": {"hosts": {"new": {
            "ansible_connection": "local", "pg_address": "127.0.0.1", "pg_port": new.port}}}}}}
    path = bed.home / "inventory.json"
    path.write_text(json.dumps(inventory))
    return path


def _slots(node):
    return node.sql("SELECT slot_name FROM pg_replication_slots")


@pytest.mark.parametrize("major", [11, 15, 18])
def test_survey_strings_through_the_playbook(bed, collection, major):
    """Every boolean as a string; keep_slot "false": the node streams without a slot
    and the one that reserved the WAL is dropped."""
    fo = failover(bed, major)
    old, new = fo.old_primary, fo.new_primary
    strings = {"pg_rewind_keep_slot": "false", "pg_rewind_reserve_wal": "yes",
               "pg_rewind_create_slot": "no", "pg_rewind_restore_target_wal": "no",
               "pg_rewind_ensure_shutdown": "true", "pg_rewind_sync": "false",
               "pg_rewind_clone_discard_old": "no", "pg_rewind_start": "yes",
               "ansible_become_method": "su"}
    result = run_playbook(str(PLAYBOOK), strings, inventory=str(_inventory(bed, old, new)))
    assert result["rc"] == 0, result["stdout"][-6000:] + result["stderr"][-3000:]
    assert "1 of 1 old primaries rejoined" in result["stdout"]
    old.running = True
    assert old.in_recovery()
    receiver = old.sql("SELECT status, slot_name FROM pg_stat_wal_receiver")
    assert receiver == [("streaming", None)], receiver
    assert _slots(new) == [], "the slot that reserved the WAL outlived the run"
    config = (old.datadir / ("recovery.conf" if major < 12 else "postgresql.auto.conf"))
    assert "primary_slot_name" not in config.read_text()


def test_survey_strings_that_turn_things_off(bed, collection):
    """pg_rewind_start "no" and pg_rewind_reserve_wal "false": the node is rewound and
    configured, not started, and no slot is created."""
    fo = failover(bed, 15)
    old, new = fo.old_primary, fo.new_primary
    role_vars = {
        "pg_rewind_pgdata": str(old.datadir), "pg_rewind_bindir": str(old.bindir),
        "pg_rewind_local_host": "127.0.0.1", "pg_rewind_port": old.port,
        "pg_rewind_source_host": "127.0.0.1", "pg_rewind_source_port": new.port,
        "pg_rewind_wait_timeout": 120, "pg_rewind_become_method": "su",
        "pg_rewind_start": "no", "pg_rewind_reserve_wal": "false", "pg_rewind_sync": "no"}
    result = run_playbook(str(ROLE_PLAYBOOK), role_vars)
    assert result["rc"] == 0, result["stdout"][-6000:] + result["stderr"][-3000:]
    assert not old.is_alive(), "pg_rewind_start: \"no\" started the node"
    assert (old.datadir / "standby.signal").exists()
    assert _slots(new) == []
