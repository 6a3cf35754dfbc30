"""The clone fallback: when a rewind cannot work, the target is rebuilt from the new
primary through the engine's own source (no pg_basebackup), its old data directory kept
aside, and it streams with the new primary's data. Killed at any point, the same task
completes it."""

import os

import pytest

from support.cluster import chown_tree
from support.digest import datadir_digest, differences
from support.engine import run_cli
from support.rewound import assert_follows_and_matches, rewind
from support.scenarios import Failover, failover


def _aside(node):
    parent = node.datadir.parent
    return sorted(p for p in parent.iterdir() if p.name.startswith(node.datadir.name + ".pgops-old-"))


@pytest.mark.parametrize("major", [11, 15, 18])
def test_no_hint_protection_is_cloned(bed, collection, major):
    fo = failover(bed, major, checksums=False, wal_log_hints=False)
    old_rows = fo.old_primary.datadir / "PG_VERSION"
    before = datadir_digest(fo.old_primary.datadir)
    refused = rewind(fo)
    assert refused["failed"] and refused["error_code"] == "no_hint_protection"
    assert differences(before, datadir_digest(fo.old_primary.datadir)) == []

    dry = rewind(fo, fallback="clone", check=True)
    assert not dry["failed"], dry.get("msg")
    assert dry["path"] == "clone" and dry["bytes_fetched"] == 0
    assert differences(before, datadir_digest(fo.old_primary.datadir)) == []

    result = rewind(fo, fallback="clone")
    assert not result["failed"], result.get("msg")
    assert result["path"] == "clone" and "checksums" in result["clone_reason"]
    assert result["bytes_fetched"] > 0 and result["old_discarded"] is False
    assert result["fetch_connections"] == 2      # whole files, read front to back
    aside, = _aside(fo.old_primary)
    assert str(aside) == result["old_datadir"]
    assert (aside / "PG_VERSION").read_text() == old_rows.read_text()
    assert datadir_digest(aside) == before, "the old data directory must be kept as it was"
    assert not (fo.old_primary.datadir / "pgops_rewind").exists()
    assert_follows_and_matches(fo)


@pytest.mark.parametrize("major", [11, 15, 18])
def test_recycled_wal_is_cloned(bed, collection, major):
    """The target's WAL at the last common checkpoint was recycled and archived nowhere."""
    fo = failover(bed, major)
    dry = rewind(fo, check=True)
    hi, lo = (int(x, 16) for x in dry["last_common_checkpoint"]["lsn"].split("/"))
    lcc_segment = (hi << 32 | lo) // (16 << 20)
    waldir = fo.old_primary.datadir / "pg_wal"
    for name in os.listdir(waldir):
        if len(name) == 24 and int(name[8:16], 16) * 256 + int(name[16:], 16) <= lcc_segment:
            os.unlink(waldir / name)
    missing = rewind(fo)
    assert missing["failed"] and missing["error_code"] in ("wal_missing", "no_common_checkpoint")
    result = rewind(fo, fallback="clone")
    assert not result["failed"], result.get("msg")
    assert result["path"] == "clone"
    assert_follows_and_matches(fo)


@pytest.mark.parametrize("kill_at", ["clone swap", "create_empty base/", "write base/",
                                     "clone pg_control"])
def test_killed_clone_is_completed_by_the_next_run(bed, collection, kill_at):
    fo = failover(bed, 16, checksums=False, wal_log_hints=False)
    os.chmod(bed.home, 0o777)
    params = {"target_pgdata": str(fo.old_primary.datadir), "fallback": "clone",
              "source_server": fo.new_primary.conninfo(), "write_recovery_conf": True,
              "sync": False}
    before = datadir_digest(fo.old_primary.datadir)
    killed = run_cli("rewind", params, fault="kill@" + kill_at)
    assert killed["_rc"] != 0
    if kill_at == "clone swap":         # the copy was being prepared beside the old directory
        assert differences(before, datadir_digest(fo.old_primary.datadir)) == []
    elif fo.old_primary.datadir.exists():
        proc = fo.old_primary.pg_ctl("-l", fo.old_primary.logfile, "-w", "-t", "30", "start",
                                     check=False)
        if proc.returncode == 0:       # only a copy that is complete may start, in recovery
            assert fo.old_primary.scalar("SELECT pg_is_in_recovery()") is True
            fo.old_primary.stop(mode="immediate")
    fo.new_primary.wait_until(lambda: fo.new_primary.scalar(
        "SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'pgops_clone_%'") == 0,
        what="the killed run's temporary slot gone with its session", timeout=60)
    done = run_cli("rewind", params)
    assert done["_rc"] == 0, done
    assert done["path"] == "clone"
    assert len(_aside(fo.old_primary)) == 1
    assert not (fo.old_primary.datadir.parent / (fo.old_primary.datadir.name + ".pgops-new")).exists()
    assert_follows_and_matches(fo)


def test_tablespaces_keep_their_locations_and_old_contents(bed, collection):
    primary = bed.cluster("primary", 15).init(checksums=False, wal_log_hints=False)
    primary.start()
    location = primary.tablespace_root / "ts_shared"
    location.mkdir(parents=True)
    chown_tree(primary.tablespace_root)
    primary.sql("CREATE TABLESPACE ts_shared LOCATION '%s'" % location)
    oid = primary.scalar("SELECT oid FROM pg_tablespace WHERE spcname = 'ts_shared'")
    primary.sql("CREATE TABLE t_ts TABLESPACE ts_shared AS SELECT generate_series(1, 5000) AS id")
    standby = bed.adopt(primary.create_standby("standby"))
    primary.wait_for_replay(standby)
    standby.promote()
    primary.sql("INSERT INTO t_ts SELECT generate_series(1, 777)")          # thrown away
    standby.sql("INSERT INTO t_ts SELECT generate_series(5001, 6000)")
    standby.sql("CREATE TABLESPACE ts_new LOCATION ''")                  # in place
    standby.sql("CREATE TABLE t_new TABLESPACE ts_new AS SELECT generate_series(1, 100) AS id")
    primary.stop()
    version_dirs = list(location.iterdir())
    assert len(version_dirs) == 1
    old_files = sorted(str(p.relative_to(version_dirs[0])) for p in version_dirs[0].rglob("*"))

    fo = Failover(primary, standby)
    result = rewind(fo, fallback="clone")
    assert not result["failed"], result.get("msg")
    assert result["path"] == "clone"
    assert os.readlink(primary.datadir / "pg_tblspc" / str(oid)) == str(location)
    aside = [p for p in location.iterdir() if ".pgops-old-" in p.name]
    assert len(aside) == 1
    assert sorted(str(p.relative_to(aside[0])) for p in aside[0].rglob("*")) == old_files
    assert_follows_and_matches(fo)
    assert primary.scalar("SELECT count(*) FROM t_ts") == 6000
    assert primary.scalar("SELECT count(*) FROM t_new") == 100


def test_clone_when_always_rebuilds_a_rewindable_node(bed, collection):
    fo = failover(bed, 13)
    result = rewind(fo, fallback="clone", clone_when="always")
    assert not result["failed"], result.get("msg")
    assert result["path"] == "clone" and result["clone_reason"] == "clone_when: always"
    assert "wal_scan" not in result["duration_s"]
    assert_follows_and_matches(fo)


def test_clone_when_cheaper_rebuilds_a_node_whose_wal_costs_more(bed, collection):
    """The old primary wrote far more WAL after the fork than the cluster holds: the WAL
    is scanned, the rewind found dearer than a copy, and the node cloned. Without the
    fallback the same costs change nothing: it is rewound."""
    fo = failover(bed, 16, stop_mode=None)
    old = fo.old_primary
    for _round in range(3):
        old.sql("CREATE TABLE churn AS SELECT repeat('x', 2000) AS pad "
                "FROM generate_series(1, 40000)")
        old.sql("DROP TABLE churn")
    old.stop()
    before = datadir_digest(old.datadir)
    plain = rewind(fo, check=True, clone_when="cheaper")
    assert not plain["failed"], plain.get("msg")
    assert "path" not in plain and plain["bytes_to_fetch"] > 0
    dry = rewind(fo, fallback="clone", clone_when="cheaper", check=True)
    assert not dry["failed"], dry.get("msg")
    assert dry["path"] == "clone" and dry["clone_reason"].startswith("a clone (")
    assert "wal_scan" in dry["duration_s"] and "files_identical" not in dry
    assert differences(before, datadir_digest(old.datadir)) == []
    result = rewind(fo, fallback="clone", clone_when="cheaper")
    assert not result["failed"], result.get("msg")
    assert result["path"] == "clone" and result["clone_reason"].startswith("a clone (")
    assert len(_aside(old)) == 1
    assert_follows_and_matches(fo)
