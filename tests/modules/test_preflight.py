"""pg_rewind_info's plan and preflight: before the old primary is stopped, which path
rejoins it (none, rewind, clone), what it costs, and every check a run needs."""

import os
import shutil

import pytest

from support.ansible import run_module
from support.digest import datadir_digest, differences
from support.scenarios import failover, switchover


def _info(fo, **args):
    params = {"target_pgdata": str(fo.old_primary.datadir),
              "source_server": fo.new_primary.conninfo()}
    params.update(args)
    result = run_module("pg_rewind_info", params)
    assert not result.get("failed"), result.get("msg")
    return result


def _checks(result):
    return {c["check"]: c for c in result["preflight"]}


@pytest.mark.parametrize("major", [11, 15, 18])
def test_diverged_node_plans_a_rewind_and_passes_every_check(bed, collection, major):
    fo = failover(bed, major)
    before = datadir_digest(fo.old_primary.datadir)
    result = _info(fo, check_replication=True)
    plan = result["plan"]
    assert plan["path"] == "rewind", plan
    assert 0 < plan["rewind_bytes"] < plan["clone_bytes"]
    assert plan["wal_bytes"] == result["wal_bytes"] > 0
    checks = _checks(result)
    assert {"target_writable", "hint_protection", "source_privileges", "replication_privilege",
            "wal_available", "target_space"} <= set(checks)
    assert all(c["ok"] for c in result["preflight"]), result["preflight"]
    assert differences(before, datadir_digest(fo.old_primary.datadir)) == []


def test_no_rewind_needed(bed, collection):
    fo = switchover(bed, 13)
    result = _info(fo)
    assert result["plan"]["path"] == "none" and result["plan"]["rewind_bytes"] == 0
    assert all(c["ok"] for c in result["preflight"])


@pytest.mark.parametrize("major", [12, 17])
def test_without_hint_protection_only_a_clone_can_work(bed, collection, major):
    fo = failover(bed, major, checksums=False, wal_log_hints=False)
    result = _info(fo)
    assert result["plan"]["path"] == "clone"
    assert "checksums" in result["plan"]["reason"]
    checks = _checks(result)
    assert checks["hint_protection"]["ok"] is False
    assert checks["rewind_possible"]["ok"] is False
    assert "fallback: clone" in checks["rewind_possible"]["message"]
    allowed = _checks(_info(fo, fallback="clone"))
    assert allowed["rewind_possible"]["ok"] is True
    assert allowed["hint_protection"]["ok"] is True       # a clone does not need them
    assert allowed["clone_privileges"]["ok"] is True


def test_wal_gone_plans_a_clone_unless_it_can_be_restored(bed, collection):
    fo = failover(bed, 15)
    lcc = _info(fo)["last_common_checkpoint"]["lsn"]
    hi, lo = (int(x, 16) for x in lcc.split("/"))
    lcc_segment = (hi << 32 | lo) // (16 << 20)
    waldir = fo.old_primary.datadir / "pg_wal"
    archive = fo.old_primary.home / "archive"
    archive.mkdir()
    for name in sorted(os.listdir(waldir)):
        if len(name) == 24 and int(name[8:16], 16) * 256 + int(name[16:], 16) == lcc_segment:
            shutil.move(str(waldir / name), str(archive / name))
    os.system("chown -R %s %s" % (fo.old_primary.datadir.stat().st_uid, archive))
    gone = _info(fo)
    assert gone["plan"]["path"] == "clone" and "WAL" in gone["plan"]["reason"]
    assert _checks(gone)["wal_available"]["ok"] is False
    restorable = _info(fo, restore_command="cp %s/%%f %%p" % archive)
    assert restorable["plan"]["path"] == "rewind"
    assert _checks(restorable)["wal_available"]["ok"] is True
    assert "cp " not in restorable["_stdout"], "restore_command must not be echoed"


def test_clone_when_cheaper(bed, collection):
    """The old primary wrote far more WAL after the fork than the cluster holds: reading
    it all costs more than copying everything."""
    fo = failover(bed, 16, stop_mode=None)
    old = fo.old_primary
    for _round in range(3):
        old.sql("CREATE TABLE churn AS SELECT repeat('x', 2000) AS pad "
                "FROM generate_series(1, 40000)")
        old.sql("DROP TABLE churn")
    old.stop()
    plain = _info(fo)
    assert plain["plan"]["path"] == "rewind"
    cheaper = _info(fo, clone_when="cheaper")
    plan = cheaper["plan"]
    assert plan["path"] == "clone", plan
    assert plan["clone_bytes"] < plan["rewind_bytes"] + plan["wal_bytes"]


def test_missing_privileges_are_a_failed_check_not_an_error(bed, collection):
    fo = failover(bed, 14)
    fo.new_primary.sql("CREATE ROLE weak LOGIN")
    conninfo = "host=127.0.0.1 port=%d user=weak dbname=postgres" % fo.new_primary.port
    result = _info(fo, source_server=conninfo, check_replication=True)
    checks = _checks(result)
    assert checks["source_privileges"]["ok"] is False
    assert "pg_read_binary_file" in checks["source_privileges"]["message"]
    assert checks["replication_privilege"]["ok"] is False
    assert result["plan"]["path"] is None
