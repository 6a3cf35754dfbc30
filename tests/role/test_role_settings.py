"""The role rejoins a node whose new primary raised its hot-standby settings after the
failover, with a replication password full of quotes, backslashes and spaces: the node
streams, and a second run changes nothing (the raised settings stay)."""

import os
import re

import pytest

from support.ansible import run_playbook
from support.compare import compare
from support.env import REPO
from support.scenarios import failover

PLAYBOOK = REPO / "tests" / "role" / "rejoin.yml"
PASSWORD = "pa'ss\\w0rd x"


def _play(fo, **extra):
    old, new = fo.old_primary, fo.new_primary
    role_vars = {
        "pg_rewind_pgdata": str(old.datadir), "pg_rewind_bindir": str(old.bindir),
        "pg_rewind_local_host": "127.0.0.1", "pg_rewind_port": old.port,
        "pg_rewind_source_host": "127.0.0.1", "pg_rewind_source_port": new.port,
        "pg_rewind_sync": False, "pg_rewind_wait_timeout": 120,
        "pg_rewind_become_method": "su" if os.geteuid() == 0 else "sudo",
        "pg_rewind_replication_user": "replicator",
        "pg_rewind_replication_password": PASSWORD,
        **extra}
    result = run_playbook(str(PLAYBOOK), role_vars)
    assert result["rc"] == 0, result["stdout"][-6000:] + result["stderr"][-3000:]
    assert PASSWORD not in result["stdout"] + result["stderr"]
    return result["recap"]["localhost"]["changed"]


@pytest.mark.parametrize("major, where", [(11, "auto_conf"), (16, "include_file")])
def test_role_raises_settings_and_streams_with_a_hostile_password(bed, collection, major,
                                                                  where):
    fo = failover(bed, major)
    new = fo.new_primary
    new.sql("CREATE ROLE replicator REPLICATION LOGIN PASSWORD %s", (PASSWORD,))
    with open(new.datadir / "pg_hba.conf", "w") as hba:
        hba.write("local all all trust\nhost all postgres 127.0.0.1/32 trust\n"
                  "host replication replicator 127.0.0.1/32 md5\n")
    new.sql("ALTER SYSTEM SET max_connections = 60")
    new.restart()

    assert _play(fo, pg_rewind_standby_settings=where) > 0
    old = fo.old_primary
    old.running = True
    assert old.scalar("SHOW max_connections") == "60"
    assert new.scalar("SELECT usename || ' ' || state FROM pg_stat_replication") == \
        "replicator streaming"
    raised_in = old.datadir / ("pgops_rewind_standby.conf" if where == "include_file"
                               else "postgresql.auto.conf")
    assert re.search(r"^max_connections = 60$", raised_in.read_text(), re.M)
    new.sql("CREATE TABLE after_role AS SELECT 1 AS x")
    new.wait_for_replay(old)
    same = compare(new, old, catalogs=True)
    assert same.equal, str(same)
    assert _play(fo, pg_rewind_standby_settings=where) == 0
