"""A region failover: several clusters of different majors rejoined by one run of the
shipped playbook, from one inventory where each old primary names its own new primary.

Run as operators do: root runs ansible-playbook against an inventory file, become (su)
to the data directory's owner, the collection as built and installed; the passwords of
the inventory are never needed (trust on loopback), the summary file and the AWX
artifact tell per node what happened.
"""

import json
import os

from support.ansible import run_playbook
from support.compare import compare
from support.env import COLLECTIONS_PATH, REPO
from support.scenarios import diverge_new_primary, diverge_old_primary, seed

PLAYBOOK = COLLECTIONS_PATH / "ansible_collections" / "pgops" / "rewind" / "playbooks" / \
    "rejoin_old_primary.yml"
MAJORS = (12, 15, 18)


def _pair(bed, major):
    """A diverged failover of one cluster: (old primary stopped, new primary running)."""
    primary = bed.cluster("old%d" % major, major).init()
    primary.start()
    standby = bed.adopt(primary.create_standby("new%d" % major))
    seed(primary)
    primary.wait_for_replay(standby)
    standby.promote()
    standby.checkpoint()
    diverge_old_primary(primary)
    diverge_new_primary(standby)
    primary.stop()
    return primary, standby


def _inventory(bed, pairs, explicit_source_port=()):
    """An inventory of local hosts: the old primaries name their own new primary. For the
    old primaries in `explicit_source_port` the inventory sets pg_rewind_source_port itself
    and the new primary's pg_port is wrong: the inventory's value must win."""
    hosts_old, hosts_new = {}, {}
    for old, new in pairs:
        explicit = old.name in explicit_source_port
        hosts_new[new.name] = {"ansible_connection": "local", "pg_address": "127.0.0.1",
                               "pg_port": 1 if explicit else new.port}
        hosts_old[old.name] = {
            "ansible_connection": "local", "pg_address": "127.0.0.1", "pg_port": old.port,
            "rejoin_new_primary": new.name,
            "pg_rewind_pgdata": str(old.datadir), "pg_rewind_bindir": str(old.bindir),
            "pg_rewind_local_host": "127.0.0.1", "pg_rewind_sync": False,
            "pg_rewind_wait_timeout": 120}
        if explicit:
            hosts_old[old.name]["pg_rewind_source_port"] = new.port
    inventory = {"all": {"children": {"old_primary": {"hosts": hosts_old},
                                      "new_primary": {"hosts": hosts_new}}}}
    path = bed.home / "inventory.json"        # JSON is YAML: the yaml inventory plugin reads it
    path.write_text(json.dumps(inventory))
    return path


def test_three_clusters_of_different_majors_in_one_run(bed, collection):
    pairs = [_pair(bed, major) for major in MAJORS]
    inventory = _inventory(bed, pairs, explicit_source_port=[pairs[-1][0].name])
    summary_file = bed.home / "fleet.json"
    result = run_playbook(str(PLAYBOOK), {"rejoin_fleet_summary_file": str(summary_file),
                                          "ansible_become_method": "su"},
                          inventory=str(inventory),
                          env={"ANSIBLE_FORKS": "3", "ANSIBLE_SHOW_CUSTOM_STATS": "1"})
    assert result["rc"] == 0, result["stdout"][-6000:] + result["stderr"][-3000:]
    assert "3 of 3 old primaries rejoined" in result["stdout"]

    nodes = {n["host"]: n for n in json.loads(summary_file.read_text())["nodes"]}
    assert sorted(nodes) == sorted(old.name for old, _new in pairs)
    for old, new in pairs:
        entry = nodes[old.name]
        assert entry["new_primary"] == new.name
        assert entry["ok"] is True and entry["streaming"] is True
        assert entry["path"] == "rewind"
        assert entry["bytes_fetched"] > 0 and entry["duration_s"] > 0
        assert entry["failure"] is None
        # the node really follows its own new primary, with its data
        old.running = True
        assert old.in_recovery()
        assert new.scalar("SELECT count(*) FROM pg_stat_replication "
                          "WHERE state = 'streaming'") == 1
        new.sql("CREATE TABLE after_fleet AS SELECT 1 AS x")
        new.wait_for_replay(old)
        same = compare(new, old, catalogs=True)
        assert same.equal, "%s: %s" % (old.name, same)
    assert "pg_rewind_fleet" in result["stdout"]          # the AWX artifact (custom stats)


def test_a_failed_node_is_in_the_summary_and_fails_the_run(bed, collection):
    """One cluster rejoins; the other names a new primary that is down: the run fails,
    the summary says which node, at which step, and the healthy one still rejoined."""
    good = _pair(bed, 15)
    bad = _pair(bed, 16)
    bad[1].stop()
    inventory = _inventory(bed, [good, bad])
    summary_file = bed.home / "fleet.json"
    result = run_playbook(str(PLAYBOOK), {"rejoin_fleet_summary_file": str(summary_file),
                                          "ansible_become_method": "su"},
                          inventory=str(inventory), env={"ANSIBLE_FORKS": "2"})
    assert result["rc"] != 0
    assert summary_file.exists(), result["stdout"][-6000:]
    nodes = {n["host"]: n for n in json.loads(summary_file.read_text())["nodes"]}
    assert nodes[good[0].name]["ok"] is True
    failed = nodes[bad[0].name]
    assert failed["ok"] is False and failed["failure"]["task"]
    assert "1 of 2 old primaries rejoined" in result["stdout"]
    assert "Not rejoined: %s." % bad[0].name in result["stdout"]
    assert not os.path.exists(bad[0].datadir / "pgops_rewind"), "the failed node was changed"
    assert (REPO / "playbooks" / "rejoin_old_primary.yml").read_text() == PLAYBOOK.read_text()


def test_summary_even_when_every_node_fails(bed, collection):
    """Ansible ends a play when all its hosts failed: the summary must still be written."""
    pair = _pair(bed, 13)
    pair[1].stop()
    summary_file = bed.home / "fleet.json"
    result = run_playbook(str(PLAYBOOK), {"rejoin_fleet_summary_file": str(summary_file),
                                          "ansible_become_method": "su"},
                          inventory=str(_inventory(bed, [pair])))
    assert result["rc"] != 0
    nodes = json.loads(summary_file.read_text())["nodes"]
    assert [n["host"] for n in nodes] == [pair[0].name] and nodes[0]["ok"] is False
    assert nodes[0]["failure"]["error_code"] == "source_unreachable", nodes[0]
