"""community.postgresql's connection options on real servers: a new primary that takes
only password logins (scram) from the rewind role, whose password has a quote, a
backslash and spaces; login_password carries it unharmed to every module, the options
override the connection string's keys, the results show where they connected (host,
port, role, database) and the password shows up nowhere."""

import json

import pytest

from support.ansible import run_module
from support.env import TEST_PASSWORD
from support.rewound import assert_follows_and_matches
from support.roles import HOSTILE_PASSWORD, password_only_rewind_role
from support.scenarios import failover

# Contains the suite's secret marker, so any leak of it is caught by the secret check.
SLOT = "pgops_login_options"


def _login(node) -> dict:
    return {"login_host": "127.0.0.1", "port": node.port, "login_user": "rewind",
            "login_password": HOSTILE_PASSWORD, "login_db": "postgres"}


def _assert_no_secret(result):
    text = json.dumps(result)
    assert TEST_PASSWORD not in text, text[-3000:]


@pytest.mark.parametrize("major", [11, 15, 18])
def test_login_password_reaches_every_module_unharmed(bed, collection, major):
    fo = failover(bed, major)
    old, new = fo.old_primary, fo.new_primary
    password_only_rewind_role(new)
    where = {"host": "127.0.0.1", "port": new.port, "user": "rewind", "dbname": "postgres"}

    # The options override the string's keys (a wrong port and role in it).
    info = run_module("pg_rewind_info", dict(
        _login(new), target_pgdata=str(old.datadir), check_replication=True,
        source_server="host=127.0.0.1 port=1 user=nobody dbname=template1"), verbose=True)
    _assert_no_secret(info)
    assert not info.get("failed"), info
    assert info["rewind_required"] is True and info["plan"]["path"] == "rewind", info
    assert all(check["ok"] for check in info["preflight"]), info["preflight"]
    assert info["source_connection"] == where
    args = info["invocation"]["module_args"]
    assert args["login_host"] == "127.0.0.1" and args["login_user"] == "rewind"
    assert args["login_password"] == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"

    slot = run_module("pg_physical_slot", dict(_login(new), name=SLOT), check=True)
    _assert_no_secret(slot)
    assert not slot.get("failed") and slot["changed"] is True, slot
    assert slot["source_connection"] == where
    assert new.scalar("SELECT count(*) FROM pg_replication_slots WHERE slot_name = %s",
                      (SLOT,)) == 0

    rewound = run_module("pg_rewind", dict(_login(new), target_pgdata=str(old.datadir),
                                           write_recovery_conf=True, sync=False))
    _assert_no_secret(rewound)
    assert not rewound.get("failed"), rewound
    assert rewound["changed"] is True and rewound["bytes_fetched"] > 0
    assert rewound["source_connection"] == where
    assert rewound["slot"]["created"] is True
    # The standby streams as rewind with the same password, written by the module.
    assert_follows_and_matches(fo)
    assert new.scalar("SELECT usename FROM pg_stat_replication WHERE state = 'streaming'") \
        == "rewind"

    # The running target's own server through the target_ options (trust for postgres).
    status = run_module("pg_rewind_info", {"target_pgdata": str(old.datadir),
                                           "target_login_host": "127.0.0.1",
                                           "target_port": old.port,
                                           "target_login_user": "postgres"})
    assert not status.get("failed"), status
    assert status["server"]["running"] is True and status["server"]["in_recovery"] is True
    assert status["target_connection"] == {"host": "127.0.0.1", "port": old.port,
                                           "user": "postgres", "dbname": None}


def test_wrong_password_and_bad_combinations_are_refused(bed, collection):
    node = bed.cluster("node", 15).init()
    node.start()
    password_only_rewind_role(node)
    wrong = run_module("pg_physical_slot", dict(_login(node), login_password="not it",
                                                name=SLOT))
    assert wrong["failed"] and "password authentication failed" in wrong["msg"], wrong
    uri = run_module("pg_physical_slot", {"source_server": "postgresql://127.0.0.1/postgres",
                                          "login_password": HOSTILE_PASSWORD, "name": SLOT})
    assert uri["failed"] and uri["error_code"] == "bad_parameters", uri
    assert "URI" in uri["msg"]
    _assert_no_secret(uri)
    nothing = run_module("pg_physical_slot", {"name": SLOT})
    assert nothing["failed"] and nothing["error_code"] == "bad_parameters", nothing
    assert node.scalar("SELECT count(*) FROM pg_replication_slots") == 0
