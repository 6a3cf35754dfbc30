"""`ansible-playbook --check` of the shipped playbook (issue 19, item 3), as AWX's Check
job type runs it ahead of an approval: it succeeds, changes nothing (the old primary's
files and server, the new primary's slots and data), says per node what a real run
would do, and the fleet summary says "would rejoin". With the old primary stopped and
with it still running (then the dry run answers from its server)."""

import json
import re

import pytest

from support.ansible import run_playbook
from support.digest import datadir_digest, differences
from support.env import COLLECTIONS_PATH
from support.scenarios import diverge_new_primary, diverge_old_primary, seed

PLAYBOOK = COLLECTIONS_PATH / "ansible_collections" / "pgops" / "rewind" / "playbooks" / \
    "rejoin_old_primary.yml"


def _diverged_pair(bed, major, running):
    primary = bed.cluster("old%d" % major, major).init()
    primary.start()
    standby = bed.adopt(primary.create_standby("new%d" % major))
    seed(primary)
    primary.wait_for_replay(standby)
    standby.promote()
    standby.checkpoint()
    diverge_old_primary(primary)
    diverge_new_primary(standby)
    if not running:
        primary.stop()
    return primary, standby


def _inventory(bed, old, new):
    inventory = {"all": {"children": {
        "old_primary": {"hosts": {old.name: {
            "ansible_connection": "local", "pg_address": "127.0.0.1", "pg_port": old.port,
            "pg_rewind_pgdata": str(old.datadir), "pg_rewind_bindir": str(old.bindir),
            "pg_rewind_local_host": "127.0.0.1", "pg_rewind_sync": False,
            "pg_rewind_wait_timeout": 120}}},
        "new_primary": {"hosts": {new.name: {
            "ansible_connection": "local", "pg_address": "127.0.0.1", "pg_port": new.port}}}}}}
    path = bed.home / "inventory.json"
    path.write_text(json.dumps(inventory))
    return path


def _text(output: str) -> str:
    return re.sub(r"\s+", " ", output)


@pytest.mark.parametrize("state", ["stopped", "running"])
@pytest.mark.parametrize("major", [11, 15, 18])
def test_check_mode_of_the_playbook(bed, collection, major, state):
    old, new = _diverged_pair(bed, major, running=state == "running")
    pid = old.postmaster_pid() if state == "running" else None
    before = datadir_digest(old.datadir) if state == "stopped" else None
    new_rows = new.scalar("SELECT count(*) FROM history")
    summary_file = bed.home / "fleet.json"
    result = run_playbook(str(PLAYBOOK), {"rejoin_fleet_summary_file": str(summary_file),
                                          "ansible_become_method": "su"},
                          check=True, inventory=str(_inventory(bed, old, new)))
    out = _text(result["stdout"])
    assert result["rc"] == 0, result["stdout"][-6000:] + result["stderr"][-3000:]
    assert "Dry run: 1 of 1 old primaries would be rejoined; %s: would rejoin via rewind" \
        % old.name in out, out[-4000:]

    # what a real run would do, per node
    if state == "running":
        assert "%s runs: it would be stopped (pg_ctl stop -m fast)" % old.name in out, out[-4000:]
    else:
        assert "%s is stopped." % old.name in out, out[-4000:]
    assert re.search(r"It would be rewound: the histories forked at [0-9A-F]+/[0-9A-F]+ on "
                     r"timeline 1; [1-9]\d* bytes to fetch", out), out[-4000:]
    assert "The rewind would discard what the old primary did after the fork" in out
    assert "Preflight: " in out and "target_writable ok" in out, out[-4000:]
    fleet = json.loads(summary_file.read_text())
    assert fleet["dry_run"] is True
    node = fleet["nodes"][0]
    assert (node["ok"], node["path"]) == (True, "rewind"), node

    # nothing changed: the old primary's files or server, the new primary
    if state == "running":
        assert old.postmaster_pid() == pid and not old.in_recovery()
        assert not (old.datadir / "standby.signal").exists()
        assert not (old.datadir / "recovery.conf").exists()
    else:
        assert not old.is_alive()
        assert differences(before, datadir_digest(old.datadir)) == []
    assert not (old.datadir / "pgops_rewind").exists()
    assert new.sql("SELECT slot_name FROM pg_replication_slots") == []
    assert new.scalar("SELECT count(*) FROM history") == new_rows
    assert not new.in_recovery()
