"""Tablespaces: the target keeps its own locations; ones created after the fork on either
side are created or removed; in-place tablespaces (pg_tblspc/<oid> directories) too."""

import os

import pytest

from support.cluster import chown_tree
from support.rewound import assert_follows_and_matches, rewind
from support.scenarios import Failover


def _tablespace(node, name, in_place=False):
    if in_place:
        node.sql("CREATE TABLESPACE %s LOCATION ''" % name)
    else:
        location = node.tablespace_root / name
        location.mkdir(parents=True)
        chown_tree(node.tablespace_root)
        node.sql("CREATE TABLESPACE %s LOCATION '%s'" % (name, location))
    return node.scalar("SELECT oid FROM pg_tablespace WHERE spcname = %s", (name,))


@pytest.mark.parametrize("major", [11, 15, 18])
def test_tablespaces(bed, collection, major):
    primary = bed.cluster("primary", major).init()
    primary.start()
    shared = _tablespace(primary, "ts_shared")
    in_place = _tablespace(primary, "ts_inplace", in_place=True)
    primary.sql("CREATE TABLE t_ts (id int, v text) TABLESPACE ts_shared")
    primary.sql("INSERT INTO t_ts SELECT g, 'common' FROM generate_series(1, 5000) g")
    primary.sql("CREATE TABLE t_inplace (id int, v text) TABLESPACE ts_inplace")
    primary.sql("INSERT INTO t_inplace SELECT g, 'common' FROM generate_series(1, 5000) g")
    standby = bed.adopt(primary.create_standby("standby"))
    primary.wait_for_replay(standby)
    standby.promote()

    primary.sql("UPDATE t_ts SET v = 'old primary' WHERE id % 10 = 0")
    primary.sql("UPDATE t_inplace SET v = 'old primary' WHERE id % 10 = 0")
    old_only = _tablespace(primary, "ts_old_only")
    primary.sql("CREATE TABLE t_old_only TABLESPACE ts_old_only AS SELECT generate_series(1, 100)")
    standby.sql("INSERT INTO t_ts SELECT g, 'new primary' FROM generate_series(5001, 6000) g")
    new_only = _tablespace(standby, "ts_new_inplace", in_place=True)
    standby.sql("CREATE TABLE t_new TABLESPACE ts_new_inplace AS SELECT generate_series(1, 100)")
    primary.stop()
    link = primary.datadir / "pg_tblspc" / str(shared)
    location_before = os.readlink(link)

    fo = Failover(primary, standby)
    result = rewind(fo)
    assert not result["failed"], result.get("msg")
    assert os.readlink(link) == location_before           # the target's own location
    assert (primary.datadir / "pg_tblspc" / str(in_place)).is_dir()
    assert not os.path.lexists(primary.datadir / "pg_tblspc" / str(old_only))
    assert (primary.datadir / "pg_tblspc" / str(new_only)).is_dir()
    assert_follows_and_matches(fo)
    assert primary.scalar("SELECT count(*) FROM t_new") == 100
