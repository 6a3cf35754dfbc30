"""The run lock: exclusive between processes, not kept by forked children, named from
the kernel, and a lock file where a directory cannot be flock()ed."""

import errno
import fcntl
import multiprocessing
import os

import pytest

from ansible_collections.pgops.rewind.plugins.module_utils.target import runlock
from ansible_collections.pgops.rewind.plugins.module_utils.errors import RefusedError


def _try_lock(path, results):
    try:
        with runlock.RunLock(path):
            results.put("locked")
    except RefusedError as exc:
        results.put((exc.code, exc.details["rewind_in_progress"]["pid"]))


def test_exclusive_named_and_released(tmp_path):
    context = multiprocessing.get_context("spawn")      # a process of its own, no fork
    results = context.Queue()
    with runlock.RunLock(str(tmp_path)):
        assert runlock.running_rewind(str(tmp_path))["pid"] == os.getpid()
        other = context.Process(target=_try_lock, args=(str(tmp_path), results))
        other.start()
        other.join(60)
        assert results.get(timeout=10) == ("rewind_in_progress", os.getpid())
    assert runlock.running_rewind(str(tmp_path)) is None
    assert sorted(os.listdir(tmp_path)) == []           # nothing written into the directory


def test_forked_child_does_not_keep_the_lock(tmp_path):
    """The parallel WAL scan forks: its workers must not hold the run's lock."""
    lock = runlock.RunLock(str(tmp_path)).__enter__()
    ready, started = os.pipe()
    done, finish = os.pipe()
    child = os.fork()
    if child == 0:                      # alive until the parent has probed the lock
        os.write(started, b"1")
        os.read(done, 1)
        os._exit(0 if not runlock._held else 1)
    try:
        assert os.read(ready, 1) == b"1"
        lock.__exit__(None, None, None)
        probe = os.open(str(tmp_path), os.O_RDONLY)
        try:
            fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)     # free: the child has no copy
        finally:
            os.close(probe)
    finally:
        os.write(finish, b"1")
        assert os.waitpid(child, 0)[1] == 0
        for handle in (ready, started, done, finish):
            os.close(handle)


def test_lock_file_where_a_directory_cannot_be_locked(tmp_path, monkeypatch):
    real = fcntl.flock

    def no_directory_locks(handle, operation):
        if os.path.isdir("/proc/self/fd/%d" % handle):
            raise OSError(errno.EBADF, "Bad file descriptor")
        return real(handle, operation)

    monkeypatch.setattr(runlock.fcntl, "flock", no_directory_locks)
    monkeypatch.setattr(runlock.tempfile, "gettempdir", lambda: str(tmp_path))
    target = tmp_path / "data"
    target.mkdir()
    with runlock.RunLock(str(target)):
        assert os.path.exists(runlock.fallback_path(str(target)))
        assert runlock.running_rewind(str(target))["pid"] == os.getpid()
        assert os.listdir(target) == []
    assert runlock.running_rewind(str(target)) is None


def test_missing_directory_and_description():
    with pytest.raises(RefusedError) as refused:
        runlock.RunLock("/nonexistent/pgdata").__enter__()
    assert refused.value.code == "not_a_data_directory"
    holder = {"pid": 42, "host": "db1", "started": "2026-01-01 03:00:00 UTC",
              "user": "postgres", "command": "python3 AnsiballZ_pg_rewind.py"}
    assert runlock.describe(holder) == ("pid 42 on host db1, started 2026-01-01 03:00:00 UTC "
                                        "(postgres, python3 AnsiballZ_pg_rewind.py)")
    assert "cannot be identified" in runlock.describe({"pid": None, "host": "db1"})
    assert runlock._short_command(["/usr/bin/python3", "-m", "pkg.cli", "rewind",
                                   "--source-server", "password=secret"]) == \
        "python3 -m pkg.cli rewind"
    assert "secret" not in runlock._short_command(["python", "host=x password=secret"])
