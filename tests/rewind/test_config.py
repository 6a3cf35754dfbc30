"""The target's own configuration survives; the standby configuration is written once."""

import re

import pytest

from support.env import TEST_PASSWORD
from support.rewound import assert_follows_and_matches, rewind
from support.scenarios import failover

CONFIG = ("postgresql.conf", "pg_hba.conf", "pg_ident.conf", "postgresql.auto.conf")


def _differentiate(fo):
    """Make the new primary's configuration files differ from the old primary's."""
    new = fo.new_primary.datadir
    with open(new / "pg_hba.conf", "a") as hba:
        hba.write("# only on the new primary\n")
    with open(new / "pg_ident.conf", "a") as ident:
        ident.write("# only on the new primary\n")
    fo.new_primary.sql("ALTER SYSTEM SET work_mem = '7MB'")


def test_target_configuration_is_kept(bed, collection):
    fo = failover(bed, 15)
    _differentiate(fo)
    before = {name: (fo.old_primary.datadir / name).read_bytes() for name in CONFIG}
    result = rewind(fo, write_recovery_conf=False)
    assert not result["failed"], result.get("msg")
    assert result["files"]["kept"] >= 4
    for name in CONFIG:
        assert (fo.old_primary.datadir / name).read_bytes() == before[name], name


def test_copied_auto_conf_loses_its_upstream(bed, collection, major):
    """postgresql.auto.conf taken from the new primary (an ex-standby, whose
    primary_conninfo points at the old primary itself) keeps the source's settings but
    not that upstream; the written standby configuration replaces it, once."""
    fo = failover(bed, major)
    _differentiate(fo)
    keep = ["postgresql.conf", "pg_hba.conf", "pg_ident.conf"]
    result = rewind(fo, keep_files=keep)
    assert not result["failed"], result.get("msg")
    auto = (fo.old_primary.datadir / "postgresql.auto.conf").read_text()
    assert "work_mem = '7MB'" in auto
    if major >= 12:
        lines = re.findall(r"^primary_conninfo = .*$", auto, re.M)
        assert len(lines) == 1 and "port=%d" % fo.new_primary.port in lines[0]
        assert (fo.old_primary.datadir / "standby.signal").exists()
    else:
        recovery = (fo.old_primary.datadir / "recovery.conf").read_text()
        assert "standby_mode = 'on'" in recovery
        assert "recovery_target_timeline = 'latest'" in recovery
        assert len(re.findall(r"^primary_conninfo = ", recovery, re.M)) == 1
        assert "primary_conninfo" not in auto
    assert "# only on the new primary" not in (fo.old_primary.datadir / "pg_hba.conf").read_text()
    assert_follows_and_matches(fo)


@pytest.mark.parametrize("major", [11, 16])
def test_standby_configuration_is_replaced_not_appended(bed, collection, major):
    fo = failover(bed, major)
    first = rewind(fo)
    assert not first["failed"], first.get("msg")
    conf = "recovery.conf" if major == 11 else "postgresql.auto.conf"
    again = rewind(fo)
    assert not again["failed"], again.get("msg")
    assert again["changed"] is False, "same settings: nothing to write"
    other = "host=127.0.0.1 port=%d user=postgres application_name=rejoined" % fo.new_primary.port
    third = rewind(fo, primary_conninfo=other)
    assert not third["failed"], third.get("msg")
    assert third["changed"] is True and third["standby_files_written"] == [conf]
    text = (fo.old_primary.datadir / conf).read_text()
    assert re.findall(r"^primary_conninfo = .*$", text, re.M) == [
        "primary_conninfo = '%s'" % other]
    assert_follows_and_matches(fo)
    assert fo.new_primary.scalar("SELECT application_name FROM pg_stat_replication") == "rejoined"


def test_password_in_source_conninfo_reaches_the_standby_not_the_output(bed, collection):
    secret = TEST_PASSWORD
    fo = failover(bed, 16)
    fo.new_primary.sql("CREATE ROLE rewinder SUPERUSER LOGIN PASSWORD %s", (secret,))
    with open(fo.new_primary.datadir / "pg_hba.conf", "w") as hba:
        hba.write("local all all trust\nhost all postgres 127.0.0.1/32 trust\n"
                  "host all all 127.0.0.1/32 scram-sha-256\n"
                  "host replication all 127.0.0.1/32 scram-sha-256\n")
    fo.new_primary.sql("SELECT pg_reload_conf()")
    conninfo = "host=127.0.0.1 port=%d user=rewinder password=%s dbname=postgres" % (
        fo.new_primary.port, secret)
    result = rewind(fo, source_server=conninfo)
    assert not result["failed"], result.get("msg")
    assert secret not in result["_stdout"] + result["_stderr"]
    auto = (fo.old_primary.datadir / "postgresql.auto.conf").read_text()
    assert "password=%s" % secret in auto and "dbname" not in auto
    assert_follows_and_matches(fo)
