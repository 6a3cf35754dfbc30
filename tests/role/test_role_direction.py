"""Issue 19 item 1 through the shipped playbook: during a split brain (the old primary
restarted and writing on timeline 1, the new primary writing on timeline 2) the
inventory's old_primary and new_primary groups are swapped by mistake. The play fails in
the preflight, naming the check, before anything is stopped: the new primary still runs,
out of recovery, on timeline 2, with every row. The right inventory then rejoins the
old primary."""

import json

import pytest

from support.ansible import run_playbook
from support.compare import compare
from support.env import COLLECTIONS_PATH
from support.scenarios import failover

PLAYBOOK = COLLECTIONS_PATH / "ansible_collections" / "pgops" / "rewind" / "playbooks" / \
    "rejoin_old_primary.yml"


def _inventory(bed, old, new, name):
    """`old` in group old_primary (the node rejoined), `new` in new_primary."""
    inventory = {"all": {"children": {
        "old_primary": {"hosts": {old.name: {
            "ansible_connection": "local", "pg_address": "127.0.0.1", "pg_port": old.port,
            "pg_rewind_pgdata": str(old.datadir), "pg_rewind_bindir": str(old.bindir),
            "pg_rewind_local_host": "127.0.0.1", "pg_rewind_sync": False,
            "pg_rewind_wait_timeout": 120}}},
        "new_primary": {"hosts": {new.name: {
            "ansible_connection": "local", "pg_address": "127.0.0.1", "pg_port": new.port}}}}}}
    path = bed.home / name
    path.write_text(json.dumps(inventory))
    return str(path)


def _rows(node) -> dict:
    """{table: (rows, digest of its contents)} of every user table."""
    tables = [r[0] for r in node.sql(
        "SELECT c.oid::regclass::text FROM pg_class c JOIN pg_namespace n ON n.oid = "
        "c.relnamespace WHERE c.relkind = 'r' AND n.nspname = 'public' ORDER BY 1")]
    return {t: tuple(node.sql("SELECT count(*), md5(coalesce(string_agg(x::text, ',' ORDER BY "
                              "x::text), '')) FROM %s x" % t)[0]) for t in tables}


@pytest.mark.parametrize("major", [11, 15, 18])
def test_swapped_groups_stop_nothing_then_the_right_inventory_rejoins(bed, collection, major):
    fo = failover(bed, major, stop_mode=None)        # the old primary keeps writing
    old, new = fo.old_primary, fo.new_primary
    old.sql("INSERT INTO history (note) SELECT 'split ' || g FROM generate_series(1, 50) g")
    rows, timeline = _rows(new), new.wal_timeline()
    assert timeline == 2 and old.wal_timeline() == 1
    summary = bed.home / "fleet.json"
    result = run_playbook(str(PLAYBOOK), {"ansible_become_method": "su",
                                          "rejoin_fleet_summary_file": str(summary)},
                          inventory=_inventory(bed, new, old, "swapped.json"))
    output = result["stdout"]
    assert result["rc"] != 0, output[-6000:]
    assert "Preflight failed, nothing was stopped or changed" in output, output[-6000:]
    assert "direction: the target is on timeline 2" in output, output[-6000:]
    assert "Check which node is which" in output
    nodes = json.loads(summary.read_text())["nodes"]
    assert nodes[0]["host"] == new.name and nodes[0]["ok"] is False
    assert new.is_alive() and not new.in_recovery()
    assert new.wal_timeline() == timeline and _rows(new) == rows
    assert old.is_alive() and not old.in_recovery()
    assert new.scalar("SELECT count(*) FROM pg_replication_slots") == 0
    assert old.scalar("SELECT count(*) FROM pg_replication_slots") == 0

    result = run_playbook(str(PLAYBOOK), {"ansible_become_method": "su"},
                          inventory=_inventory(bed, old, new, "right.json"))
    assert result["rc"] == 0, result["stdout"][-6000:] + result["stderr"][-3000:]
    assert "1 of 1 old primaries rejoined" in result["stdout"]
    # issue 19 item 2: the new primary's WAL is reserved before the old primary is stopped
    out = result["stdout"]
    reserve = out.index("Reserve the new primary's WAL before anything is stopped")
    assert out.index("changed", reserve) < out.index("Stop the node with pg_ctl") , out[-6000:]
    old.running = True
    assert old.in_recovery()
    new.sql("CREATE TABLE after_rejoin AS SELECT 1 AS x")
    new.wait_for_replay(old)
    same = compare(new, old, catalogs=True)
    assert same.equal, str(same)
