"""Hostile values in the standby configuration: written by the module, read back by a
real server exactly as meant (`SHOW primary_conninfo` parsed by libpq, the replication
login with that password, the application_name the primary sees)."""

import contextlib
import time
from urllib.parse import quote

import psycopg2.extensions
import pytest

from support.rewound import rewind
from support.scenarios import Failover

# (password, application_name): quote, backslash, space, "=", Unicode, empty, the
# issue's password, and the escapes a configuration file would decode.
HOSTILE = [
    ("it's", "it's"),
    ("back\\slash\\", "a\\b"),
    (" two words ", "two words"),
    ("a=b=", "k=v"),
    ("pässwörd ✓", "naïve ✓"),
    ("x", ""),
    ("pa'ss\\w0rd x", "pa'ss\\w0rd x"),
    ("\\n\\'''", "\\t"),
]


def _require_password(primary):
    primary.sql("CREATE ROLE repl SUPERUSER REPLICATION LOGIN")
    with open(primary.datadir / "pg_hba.conf", "w") as hba:
        hba.write("local all all trust\nhost all postgres 127.0.0.1/32 trust\n"
                  "host replication postgres 127.0.0.1/32 trust\n"
                  "host all repl 127.0.0.1/32 md5\nhost replication repl 127.0.0.1/32 md5\n")
    primary.sql("SELECT pg_reload_conf()")


def _wait_streaming(primary, standby):
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with contextlib.suppress(psycopg2.Error):
            if primary.scalar("SELECT count(*) FROM pg_stat_replication "
                              "WHERE usename = 'repl' AND state = 'streaming'") == 1:
                return
        time.sleep(0.2)
    raise AssertionError("the standby does not stream with the written primary_conninfo:\n"
                         + standby.log_tail())


@pytest.mark.parametrize("major", [11, 12, 18])
def test_hostile_values_reach_the_server_as_meant(bed, collection, major):
    primary, standby = bed.primary_and_standby(major)
    _require_password(primary)
    for password, application_name in HOSTILE:
        primary.sql("ALTER ROLE repl PASSWORD %s", (password,))
        standby.stop()
        # The test's own quoting: a URI, percent-encoded, independent of the engine's.
        source = "postgresql://repl:%s@127.0.0.1:%d/postgres?application_name=%s" % (
            quote(password, safe=""), primary.port, quote(application_name, safe=""))
        result = rewind(Failover(standby, primary), source_server=source)
        assert not result["failed"], result.get("msg")
        assert result["rewind_required"] is False
        standby.start()
        _wait_streaming(primary, standby)
        meant = {"user": "repl", "password": password, "host": "127.0.0.1",
                 "port": str(primary.port), "application_name": application_name}
        if major >= 17:
            meant["dbname"] = "postgres"      # kept from 17 on, as pg_rewind -R does
        if major >= 12:
            shown = standby.scalar("SHOW primary_conninfo")
            assert psycopg2.extensions.parse_dsn(shown) == meant, shown
        receiver = standby.scalar("SELECT conninfo FROM pg_stat_wal_receiver")
        if application_name:      # libpq's own reading of the written conninfo
            assert " application_name=%s " % application_name in receiver + " ", receiver
