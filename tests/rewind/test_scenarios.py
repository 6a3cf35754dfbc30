"""The situations PostgreSQL's own pg_rewind test suite builds, and a few more.

Oracle every time: the rewound node starts as a standby of the new primary,
replays to its current position, and every table of every database equals it.
"""

import os
import shutil
import signal
import time

import pytest

from support.cluster import chown_tree
from support.digest import datadir_digest, differences
from support.env import MAJORS, bindir
from support.rewound import assert_follows_and_matches, rewind
from support.scenarios import Failover, diverge_new_primary, diverge_old_primary, failover, seed


def _ok(result):
    assert not result["failed"], "%s (%s)" % (result.get("msg"), result.get("error_code"))
    return result


def test_databases_created_and_dropped_after_the_fork(bed, collection, major):
    """002: databases only on one side, created before and after the fork, dropped."""
    primary, standby = bed.primary_and_standby(major, group_access=True)
    primary.sql("CREATE DATABASE inprimary")
    primary.sql("CREATE TABLE t AS SELECT generate_series(1, 100) AS id", dbname="inprimary")
    primary.sql("CREATE DATABASE dropped_later")
    primary.sql("CREATE TABLE d AS SELECT generate_series(1, 100) AS id", dbname="dropped_later")
    primary.wait_for_replay(standby)
    standby.promote()
    primary.sql("CREATE DATABASE primary_afterpromotion")
    primary.sql("CREATE TABLE p AS SELECT generate_series(1, 100) AS id",
                dbname="primary_afterpromotion")
    primary.sql("DROP DATABASE dropped_later")
    primary.sql("INSERT INTO t SELECT generate_series(101, 200)", dbname="inprimary")
    standby.sql("CREATE DATABASE standby_afterpromotion")
    standby.sql("CREATE TABLE s AS SELECT generate_series(1, 100) AS id",
                dbname="standby_afterpromotion")
    primary.stop()
    fo = Failover(primary, standby)
    _ok(rewind(fo))
    # group access (initdb -g) survives: new files 0640, new directories 0750
    for path, (kind, mode, _uid, _size, _digest) in datadir_digest(primary.datadir).items():
        if path.startswith("base/") and not path.startswith("pg_tblspc"):
            assert mode == (0o750 if kind == "dir" else 0o640), (path, oct(mode))
    assert_follows_and_matches(fo)
    names = {row[0] for row in primary.sql("SELECT datname FROM pg_database")}
    assert names == {"inprimary", "dropped_later", "postgres", "standby_afterpromotion",
                     "template0", "template1"}


@pytest.mark.parametrize("major", [11, 15, 18])
def test_extra_files_and_directories(bed, collection, major):
    """003: non-PostgreSQL files on both, only the source, only the target."""
    primary, standby = bed.primary_and_standby(major)
    seed(primary)
    primary.wait_for_replay(standby)
    for node in (primary, standby):
        (node.datadir / "tst_both_dir").mkdir()
        (node.datadir / "tst_both_dir" / "both_file1").write_text("in both1")
    sdir = standby.datadir / "tst_standby_dir"
    (sdir / "standby_subdir").mkdir(parents=True)
    (sdir / "standby_file1").write_text("in standby1")
    (sdir / "file with 'quotes' and spaces").write_text("odd name")
    (sdir / "standby_subdir" / ".DS_Store").write_text("junk")
    (primary.datadir / "tst_primary_dir" / "sub").mkdir(parents=True)
    (primary.datadir / "tst_primary_dir" / "sub" / "primary_file").write_text("gone")
    chown_tree(primary.datadir)
    chown_tree(standby.datadir)
    standby.promote()
    diverge_old_primary(primary)
    primary.stop()
    fo = Failover(primary, standby)
    _ok(rewind(fo))
    found = sorted(p for p in datadir_digest(primary.datadir) if p.startswith("tst_"))
    assert found == ["tst_both_dir", "tst_both_dir/both_file1", "tst_standby_dir",
                     "tst_standby_dir/file with 'quotes' and spaces",
                     "tst_standby_dir/standby_file1", "tst_standby_dir/standby_subdir"]
    assert_follows_and_matches(fo)


def test_symlinked_pg_wal(bed, collection):
    """004: the target's pg_wal is a symlink to another directory; it stays one."""
    primary, standby = bed.primary_and_standby(15)
    primary.stop()
    elsewhere = primary.home / "wal_elsewhere"
    shutil.move(str(primary.datadir / "pg_wal"), str(elsewhere))
    os.symlink(elsewhere, primary.datadir / "pg_wal")
    primary.start()
    seed(primary)
    primary.wait_for_replay(standby)
    standby.promote()
    diverge_old_primary(primary)
    primary.stop()
    fo = Failover(primary, standby)
    _ok(rewind(fo))
    assert os.path.islink(primary.datadir / "pg_wal")
    assert any(name.startswith("00000002") for name in os.listdir(elsewhere))
    assert_follows_and_matches(fo)


def test_same_timeline_is_a_no_op(bed, collection, major):
    """005: a standby that was never promoted away needs no rewind; nothing changes."""
    primary, standby = bed.primary_and_standby(major)
    seed(primary)
    primary.wait_for_replay(standby)
    standby.stop()
    before = datadir_digest(standby.datadir)
    result = _ok(rewind(Failover(standby, primary), write_recovery_conf=False))
    assert result["changed"] is False and result["reason"] == "same_timeline"
    assert differences(before, datadir_digest(standby.datadir)) == []


def test_hot_standby_as_source(bed, collection, major):
    """007: A -> B -> C; C promoted, writes; C is rewound from B, a standby."""
    a, b = bed.primary_and_standby(major)
    seed(a)
    c = bed.adopt(b.create_standby("cascade"))
    a.wait_for_replay(b)
    b.wait_for_replay(c)
    c.promote()
    a.sql("INSERT INTO history (note) VALUES ('in A, after C was promoted')")
    c.sql("INSERT INTO history (note) VALUES ('in C, after C was promoted')")
    diverge_old_primary(c)
    a.wait_for_replay(b)
    c.stop()
    fo = Failover(c, b)
    # C was promoted from B's (still current) timeline 1: by its history C is the newer
    # primary; sending it back to the older timeline is a deliberate choice (issue 19).
    refused = rewind(fo)
    assert refused["failed"] and refused["error_code"] == "wrong_direction", refused
    result = _ok(rewind(fo, allow_older_source=True))
    assert result["source"]["state"] == "in archive recovery"
    assert_follows_and_matches(fo, writer=a)
    notes = {row[0] for row in c.sql("SELECT note FROM history")}
    assert "in A, after C was promoted" in notes and "in C, after C was promoted" not in notes
    a.sql("INSERT INTO history (note) VALUES ('cascades A -> B -> C')")
    a.wait_for_replay(b)
    b.wait_for_replay(c)
    assert c.scalar("SELECT count(*) FROM history WHERE note = 'cascades A -> B -> C'") == 1


def test_min_recovery_point(bed, collection, major):
    """008: the target is a standby whose WAL goes past its last restartpoint: the end of
    its WAL must come from minRecoveryPoint, else "no rewind needed" would be wrong."""
    node1, node2 = bed.primary_and_standby(major)
    node1.sql("CREATE TABLE foo (t text)")
    node1.sql("CREATE TABLE bar (t text)")
    node1.sql("INSERT INTO bar VALUES ('in both')")
    node3 = bed.adopt(node1.create_standby("node3"))
    node1.wait_for_replay(node2)
    node1.wait_for_replay(node3)
    node1.stop()
    node3.promote()
    for follower in (node1, node2):          # both follow node3 now
        follower.stop() if follower.is_alive() else None
        _reconfigure_standby(follower, node3)
        follower.start()
    node3.wait_for_replay(node1)
    node3.wait_for_replay(node2)
    node1.promote()                           # split brain: node1 on timeline 3
    node1.sql("INSERT INTO foo VALUES ('keep this')")
    node3.sql("INSERT INTO bar VALUES ('rewind this')")
    node3.wait_for_replay(node2)
    node2.stop()
    fo = Failover(node2, node1)
    result = _ok(rewind(fo))
    assert result["rewind_required"]
    assert_follows_and_matches(fo)
    assert [r[0] for r in node2.sql("SELECT t FROM bar ORDER BY t")] == ["in both"]
    assert [r[0] for r in node2.sql("SELECT t FROM foo ORDER BY t")] == ["keep this"]


def _reconfigure_standby(node, upstream):
    for name in ("standby.signal", "recovery.conf", "postgresql.auto.conf"):
        path = node.datadir / name
        if path.exists():
            path.unlink()
    node.make_standby_of(upstream)


def test_growing_source_file_is_refused(bed, collection):
    """009: a local source whose file grows while copied: a clear failure."""
    fo = failover(bed, 15)
    fo.new_primary.stop()
    grower = fo.new_primary.datadir / "tst_growing"
    grower.write_bytes(b"x" * 10_000_000)
    pid = os.fork()
    if pid == 0:                             # keep appending while the rewind runs
        try:
            with open(grower, "ab") as handle:
                while True:
                    handle.write(b"y" * 4096)
                    handle.flush()
                    time.sleep(0.001)
        finally:
            os._exit(0)
    try:
        result = rewind(fo, source_pgdata=str(fo.new_primary.datadir), write_recovery_conf=False)
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    assert result["failed"] and result["error_code"] == "source_changed"
    assert "tst_growing" in result["msg"]


def test_keeps_the_target_wal_replay_needs(bed, collection):
    """010: the new primary no longer has the old timeline's WAL between the last common
    checkpoint and the fork; the target's own copies are kept, and replay uses them."""
    fo = failover(bed, 15)
    new = fo.new_primary
    switch_segment = (new.datadir / "pg_wal" / "00000002.history").read_text().split("\t")[1]
    new.checkpoint()
    for name in os.listdir(new.datadir / "pg_wal"):
        if name.startswith("00000001"):
            os.unlink(new.datadir / "pg_wal" / name)
    high, low = (int(part, 16) for part in switch_segment.split("/"))
    fork_segment = "00000001%08X%08X" % (high, low >> 24)
    _ok(rewind(fo))
    assert (fo.old_primary.datadir / "pg_wal" / fork_segment).exists()
    assert_follows_and_matches(fo)


def test_crashed_target(bed, collection, major):
    """An old primary that crashed (immediate stop) gets crash recovery first."""
    fo = failover(bed, major, stop_mode="immediate")
    result = _ok(rewind(fo, bindir=str(bindir(major))))
    assert result["crash_recovery"] is True
    assert result["target_state_before"] == "in production"
    assert_follows_and_matches(fo)


def test_crashed_target_without_ensure_shutdown_is_refused(bed, collection):
    fo = failover(bed, 15, stop_mode="immediate")
    before = datadir_digest(fo.old_primary.datadir)
    result = rewind(fo, ensure_shutdown=False)
    assert result["failed"] and result["error_code"] == "target_unclean"
    assert differences(before, datadir_digest(fo.old_primary.datadir)) == []


@pytest.mark.parametrize("major", [12, 15, 18])
def test_source_promoted_twice(bed, collection, major):
    primary, standby = bed.primary_and_standby(major)
    seed(primary)
    primary.wait_for_replay(standby)
    standby.promote()
    diverge_old_primary(primary)
    primary.stop()
    cascade = bed.adopt(standby.create_standby("cascade"))
    diverge_new_primary(standby)
    standby.wait_for_replay(cascade)
    cascade.promote()
    cascade.sql("INSERT INTO history (note) VALUES ('on timeline 3')")
    fo = Failover(primary, cascade)
    result = _ok(rewind(fo))
    assert result["source_timeline"] == 3
    assert_follows_and_matches(fo)


@pytest.mark.parametrize("major", sorted(m for m in MAJORS if m <= 15))
def test_source_promoted_a_moment_ago(bed, collection, major):
    """11-15: the new primary's pg_control still shows the old timeline (its checkpoint
    after promotion is still running); the rewind must happen all the same."""
    primary, standby = bed.primary_and_standby(major)
    standby.write_node_settings({"checkpoint_timeout": "'1h'",
                                 "checkpoint_completion_target": "0.9"})
    standby.restart()
    seed(primary)
    primary.sql("CREATE TABLE big AS SELECT g, repeat('x', 100) AS pad "
                "FROM generate_series(1, 150000) g")
    primary.wait_for_replay(standby)
    standby.promote()
    diverge_old_primary(primary)
    primary.stop()
    assert standby.scalar("SELECT timeline_id FROM pg_control_checkpoint()") == 1
    fo = Failover(primary, standby)
    result = _ok(rewind(fo))
    assert result["rewind_required"] and result["source_timeline"] == 2
    assert_follows_and_matches(fo)


def test_restore_command_fetches_missing_target_wal(bed, collection, major):
    """The target's WAL from the last common checkpoint on is gone from pg_wal but in an
    archive: restore_command brings it back; without it the rewind refuses cleanly."""
    fo = failover(bed, major)
    archive = fo.old_primary.home / "archive"
    archive.mkdir()
    waldir = fo.old_primary.datadir / "pg_wal"
    dry = _ok(rewind(fo, check=True))
    lcc_segment = int(dry["last_common_checkpoint"]["lsn"].split("/")[0], 16) * 256 + \
        int(dry["last_common_checkpoint"]["lsn"].split("/")[1], 16) // (16 << 20)
    moved = []
    for name in sorted(os.listdir(waldir)):
        if len(name) == 24 and int(name[8:16], 16) * 256 + int(name[16:], 16) >= lcc_segment:
            shutil.move(str(waldir / name), str(archive / name))
            moved.append(name)
    assert moved
    os.system("chown -R %s %s" % (fo.old_primary.datadir.stat().st_uid, archive))
    before = datadir_digest(fo.old_primary.datadir)
    missing = rewind(fo)
    assert missing["failed"] and missing["error_code"] == "wal_missing"
    assert moved[0] in missing["msg"] or any(m in missing["msg"] for m in moved)
    assert differences(before, datadir_digest(fo.old_primary.datadir)) == []
    result = _ok(rewind(fo, restore_command="cp %s/%%f %%p" % archive))
    assert result["rewind_required"]
    assert_follows_and_matches(fo)


@pytest.mark.parametrize("major", [11, 15, 18])
def test_local_source(bed, collection, major):
    """The new primary stopped cleanly and read as a local data directory."""
    fo = failover(bed, major)
    fo.new_primary.stop()
    result = _ok(rewind(fo, source_pgdata=str(fo.new_primary.datadir),
                        primary_conninfo=fo.new_primary.conninfo()))
    assert result["rewind_required"] and result["bytes_fetched"] > 0
    fo.new_primary.start()
    assert_follows_and_matches(fo)


def test_crashed_target_finds_its_own_binaries(bed, collection):
    """Without bindir, the target's postgres is found where the distribution puts it."""
    fo = failover(bed, 15, stop_mode="immediate")
    result = _ok(rewind(fo))
    assert result["crash_recovery"] is True
    assert_follows_and_matches(fo)
