"""A broken or hostile source listing cannot make the rewind write outside the target.

A real PostgreSQL server cannot be made to list `..` or a symlink to /etc, so these
listings are written by hand; everything else here works on real directories."""

import os

import pytest

from ansible_collections.pgops.rewind.plugins.module_utils.pg.blockmap import ChangedBlocks
from ansible_collections.pgops.rewind.plugins.module_utils.pg.datadir import (DIRECTORY, FILE, SYMLINK,
                                                                              FileEntry)
from ansible_collections.pgops.rewind.plugins.module_utils.errors import RewindError
from ansible_collections.pgops.rewind.plugins.module_utils.plan.filemap import COPY, build_plan
from ansible_collections.pgops.rewind.plugins.module_utils.target.directory import TargetDirectory

TSDIR = "PG_15_202209061"


def _plan(source, target=None):
    return build_plan(source, target or {}, ChangedBlocks(), TSDIR)


@pytest.mark.parametrize("path", ["../evil", "/etc/passwd", "base/../../x", "base//5",
                                  "base/./5", "", "base/5/\x00x", "..", "pg_wal/..\\x"])
def test_paths_leaving_the_data_directory_are_refused(path):
    with pytest.raises(RewindError) as err:
        _plan({path: FileEntry(FILE, 10)})
    assert err.value.code == "unsafe_path"


def test_only_tablespace_links_are_created():
    plan = _plan({"pg_tblspc/16400": FileEntry(SYMLINK, 0, "/srv/ts")})
    assert [(a.path, a.action) for a in plan.actions] == [("pg_tblspc/16400", "create")]
    for path, target in (("base/evil", "/etc"), ("pg_tblspc/16400/x", "/etc"),
                         ("pg_tblspc/0016400", "/etc")):
        with pytest.raises(RewindError) as err:
            _plan({path: FileEntry(SYMLINK, 0, target)})
        assert err.value.code == "unsafe_path"
    with pytest.raises(RewindError):
        _plan({"pg_tblspc/16400": FileEntry(SYMLINK, 0, "../../etc")})


def test_impossible_sizes_are_refused():
    with pytest.raises(RewindError):
        _plan({"base/5/16384": FileEntry(FILE, (1 << 30) + 8192)})
    with pytest.raises(RewindError):
        _plan({"pg_xact/0000": FileEntry(FILE, -1)})
    plan = _plan({"base/5/16384": FileEntry(FILE, 1 << 30)})   # a full segment is fine
    assert plan.actions[0].action == COPY


def test_no_write_through_a_symlink_planted_in_the_target(tmp_path):
    pgdata = tmp_path / "pgdata"
    outside = tmp_path / "outside"
    (pgdata / "base").mkdir(parents=True)
    outside.mkdir()
    os.symlink(outside, pgdata / "base" / "5")
    target = TargetDirectory(str(pgdata), sync=False)
    with pytest.raises(RewindError) as err:
        target.write("base/5/16384", 0, b"x" * 8192)
    assert err.value.code == "unsafe_path"
    assert os.listdir(outside) == []
    with pytest.raises(RewindError):
        target.create_empty("../escape")
    assert not (tmp_path / "escape").exists()


def test_tablespace_links_are_followed(tmp_path):
    pgdata = tmp_path / "pgdata"
    location = tmp_path / "ts"
    (pgdata / "pg_tblspc").mkdir(parents=True)
    (location / TSDIR / "5").mkdir(parents=True)
    os.symlink(location, pgdata / "pg_tblspc" / "16400")
    target = TargetDirectory(str(pgdata), sync=False)
    target.write("pg_tblspc/16400/%s/5/16384" % TSDIR, 0, b"y" * 8192)
    assert (location / TSDIR / "5" / "16384").read_bytes() == b"y" * 8192


def test_a_directory_where_the_target_has_a_file_is_refused():
    with pytest.raises(RewindError) as err:
        _plan({"tst": FileEntry(DIRECTORY)}, {"tst": FileEntry(FILE, 3)})
    assert err.value.code == "type_mismatch"
