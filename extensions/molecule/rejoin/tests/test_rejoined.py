"""testinfra: the old primary runs, is in recovery, streams from the new primary, and
holds exactly its data; the dry run before (molecule check) said it would rejoin it and
changed nothing."""

import json
import os
import sys

import psycopg2

testinfra_hosts = ["old_primary_node"]
LAB = json.load(open(os.path.join(os.environ.get("PGOPS_LAB_DIR", "/tmp/pgops-molecule-lab"),
                                  "lab.json")))


def _query(role, sql):
    node = LAB["nodes"][role]
    with psycopg2.connect(host="127.0.0.1", port=node["port"], user="postgres",
                          dbname="postgres") as conn, conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall()


def test_postgres_runs_on_the_old_primary(host):
    pidfile = host.file(os.path.join(LAB["nodes"]["old_primary"]["datadir"], "postmaster.pid"))
    assert pidfile.exists
    pid = int(pidfile.content_string.split("\n")[0])
    process = host.process.get(pid=pid)
    assert process.user == LAB["os_user"]
    assert "postgres" in process.comm


def test_it_is_a_standby_streaming_from_the_new_primary():
    assert _query("old_primary", "SELECT pg_is_in_recovery()") == [(True,)]
    status, port = _query("old_primary",
                          "SELECT status, sender_port FROM pg_stat_wal_receiver")[0]
    assert status == "streaming"
    assert port == LAB["nodes"]["new_primary"]["port"]
    assert _query("new_primary", "SELECT state FROM pg_stat_replication") == [("streaming",)]


def test_it_logged_in_with_the_hostile_replication_password():
    """The replication role's password has a quote, a backslash and a space; the new
    primary accepts no other login for replication."""
    assert _query("new_primary", "SELECT usename FROM pg_stat_replication") == \
        [(LAB["replication_user"],)]


def test_its_hot_standby_settings_were_raised_to_the_new_primarys():
    """The new primary runs with more connections than the old primary's own
    configuration had: the standby could only start with them raised."""
    assert _query("new_primary", "SHOW max_connections") == [(str(LAB["max_connections"]),)]
    assert _query("old_primary", "SHOW max_connections") == [(str(LAB["max_connections"]),)]


def test_its_data_equals_the_new_primary():
    sys.path.insert(0, os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "tests"))
    from support.lab import main as lab
    assert lab(["compare", "--dir", os.environ.get("PGOPS_LAB_DIR", "/tmp/pgops-molecule-lab")]) == 0


def _fleet(name):
    with open(os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], name)) as summary:
        return json.load(summary)


def test_the_dry_run_said_it_would_rejoin_and_changed_nothing():
    """`molecule check` ran the playbook in check mode first: it reported a rewind; had it
    changed the old primary, the first real run (converge) would have found nothing left
    to rewind, or another fork."""
    dry = _fleet("fleet-dry-run.json")
    assert dry["dry_run"] is True
    assert [(n["ok"], n["path"], n["streaming"]) for n in dry["nodes"]] == [(True, "rewind", False)]
    runs = sorted(name for name in os.listdir(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
                  if name.startswith("fleet-run-"))
    assert len(runs) == 2, runs                 # converge, idempotence
    converge, idempotence = _fleet(runs[0]), _fleet(runs[1])
    assert converge["dry_run"] is False
    assert [(n["ok"], n["path"], n["streaming"]) for n in converge["nodes"]] == \
        [(True, "rewind", True)]
    assert converge["nodes"][0]["divergence"] == dry["nodes"][0]["divergence"]
    assert [n["path"] for n in idempotence["nodes"]] == ["none"]
