"""testinfra: the old primary runs, is in recovery, streams from the new primary, and
holds exactly its data."""

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
