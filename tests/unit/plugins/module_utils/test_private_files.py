"""The progress file and the restored-WAL directory on a shared host: never written
through a planted link, private, and not left behind by dead runs."""

import json
import os
import stat
import tempfile

import pytest

from ansible_collections.pgops.rewind.plugins.module_utils.runtime.progress import Progress
from ansible_collections.pgops.rewind.plugins.module_utils.runtime.scratch import (
    WAL_PREFIX, ScratchDirectory, sweep_dead)


@pytest.fixture
def tmpdir_of_run(tmp_path, monkeypatch):
    """What the engine takes as the temporary directory, like /tmp (sticky, world-writable)."""
    root = tmp_path / "tmp"
    root.mkdir(mode=0o1777)
    os.chmod(root, 0o1777)
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


def test_progress_file_is_private_and_replaced_whole(tmpdir_of_run):
    path = tmpdir_of_run / "progress.json"
    progress = Progress(str(path), interval=0)
    progress.phase("copy", 10)
    progress.end()
    assert progress.path == str(path) and progress.moved is None
    assert json.loads(path.read_text())["phase"] == "done"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert os.listdir(tmpdir_of_run) == ["progress.json"], "no temporary file left"


def test_planted_links_do_not_redirect_progress(tmpdir_of_run, tmp_path):
    """Links at the progress path and at the temporary names an older version used."""
    victim = tmp_path / "victim"
    victim.write_text("precious")
    path = tmpdir_of_run / "progress.json"
    for name in (path, "%s.%d.tmp" % (path, os.getpid()), "%s.tmp" % path):
        os.symlink(victim, name)
    progress = Progress(str(path), interval=0)
    progress.phase("copy", 10)
    progress.advance(5)
    progress.end()
    assert victim.read_text() == "precious"
    assert os.readlink(path) == str(victim), "the planted link itself is left alone"
    assert "symbolic link" in progress.moved
    moved = progress.path
    assert os.path.dirname(moved) == str(tmpdir_of_run / ("pgops_rewind-%d" % os.geteuid()))
    assert stat.S_IMODE(os.stat(os.path.dirname(moved)).st_mode) == 0o700
    assert json.loads(open(moved).read())["phase"] == "done"


def test_another_users_file_at_the_progress_path_is_left_alone(tmpdir_of_run):
    assert os.geteuid() == 0, "run as root (make test) to plant another user's file"
    path = tmpdir_of_run / "progress.json"
    path.write_text("theirs")
    os.chown(path, 65534, 65534)
    progress = Progress(str(path), interval=0)
    progress.end()
    assert path.read_text() == "theirs" and "owned by uid 65534" in progress.moved


def test_restored_wal_directories_of_dead_runs_are_removed(tmpdir_of_run):
    dead = ScratchDirectory()
    (open(os.path.join(dead.path, "000000010000000000000003"), "wb")).close()
    os.close(dead._lock)                # killed: its lock is released, its files stay
    live = ScratchDirectory()           # a run that is still going
    assert stat.S_IMODE(os.stat(live.path).st_mode) == 0o700
    theirs = tmpdir_of_run / (WAL_PREFIX + "another-user")
    theirs.mkdir()
    (theirs / ".in-use").touch()
    os.chown(theirs, 65534, 65534)      # root runs the tests: plant another user's
    assert sweep_dead() == [dead.path]  # what the next run does first
    assert not os.path.exists(dead.path)
    assert os.path.isdir(live.path), "a live run's directory is never taken"
    live.remove()
    assert [n for n in os.listdir(tmpdir_of_run) if n.startswith(WAL_PREFIX)] == [theirs.name]
