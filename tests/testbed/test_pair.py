"""The test bed itself, on every supported major: build, replicate, promote, compare."""

from support.compare import compare


def test_pair_replicates_promotes_and_compares(bed, major):
    primary, standby = bed.primary_and_standby(major)
    assert primary.scalar("SELECT current_setting('server_version_num')::int / 10000") == major
    primary.sql("CREATE TABLE t (id int PRIMARY KEY, v text)")
    primary.sql("INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 1000) g")
    primary.sql("CREATE DATABASE other")
    primary.sql("CREATE TABLE o AS SELECT g AS id FROM generate_series(1, 10) g", dbname="other")

    state = primary.sql("SELECT application_name, state FROM pg_stat_replication")
    assert state == [("standby", "streaming")]
    assert standby.in_recovery()
    primary.wait_for_replay(standby)
    same = compare(primary, standby, catalogs=True)
    assert same.equal, str(same)
    assert ("other", "public", "o") in same.left.tables

    standby.promote()
    assert standby.wal_timeline() == 2
    assert (standby.datadir / "pg_wal" / "00000002.history").is_file()
    history = (standby.datadir / "pg_wal" / "00000002.history").read_text()
    assert history.startswith("1\t")

    primary.sql("UPDATE t SET v = 'diverged' WHERE id = 7")
    different = compare(primary, standby)
    assert not different.equal
    assert any("postgres.public.t" in line for line in different.differences)


def test_clean_and_immediate_stop(bed, major):
    node = bed.cluster("solo", major).init(checksums=False, wal_log_hints=True)
    node.start()
    assert node.scalar("SHOW wal_log_hints") == "on"
    assert node.scalar("SHOW data_checksums") == "off"
    node.stop(mode="immediate")
    assert not node.is_alive()
    node.start()
    node.stop()
    assert not node.is_alive()
