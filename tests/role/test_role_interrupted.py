"""The documented recovery from an interrupted rewind is to run the same job again.
Here the whole job is killed -- ansible-playbook's process group and the module's
own process on the node -- while the rewind copies, and the same playbook is run
again: it must read what it needs with pg_control set aside (major version, control
data from the journal), complete the rewind, write the standby configuration of that
major (recovery.conf only on 11), start the node and see it stream with equal data."""

import os
import signal
import time

import pytest

from support.ansible import run_module, run_playbook, start_playbook
from support.scenarios import failover

from test_role import PLAYBOOK, _assert_rejoined, _changed, _vars

PAUSE_AT_STEP = 8       # journal, pg_control set aside, then a few files copied


def _job_processes(marker: str) -> list:
    """Every process of this job: those started with our fault marker in their
    environment (the playbook, its workers, su, the module's Python on the node)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/environ" % entry, "rb") as handle:
                if marker.encode() in handle.read():
                    found.append(int(entry))
        except OSError:
            continue
    return found


def _kill_job_in_copy(fo, marker):
    job = start_playbook(str(PLAYBOOK), _vars(fo),
                         env={"PGOPS_REWIND_FAULT": "pause:%d:%s" % (PAUSE_AT_STEP, marker)})
    deadline = time.monotonic() + 300
    while not os.path.exists(marker):
        assert job.poll() is None, job.stdout.read()[-4000:]
        assert time.monotonic() < deadline, "the rewind never reached the copy"
        time.sleep(0.1)
    module = [pid for pid in _job_processes(marker) if pid != job.pid]
    assert any("python" in open("/proc/%d/cmdline" % pid).read() for pid in module)
    os.killpg(job.pid, signal.SIGKILL)
    for pid in module:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    job.wait(timeout=60)
    deadline = time.monotonic() + 30
    while _job_processes(marker):
        assert time.monotonic() < deadline, "a process of the killed job survived"
        time.sleep(0.1)
    os.unlink(marker)


@pytest.mark.parametrize("major", [11, 12, 18])
def test_job_killed_mid_copy_then_run_again(bed, collection, major):
    fo = failover(bed, major)
    old = fo.old_primary
    marker = str(bed.home / "paused-in-copy")
    os.chmod(bed.home, 0o777)
    _kill_job_in_copy(fo, marker)
    assert (old.datadir / "pgops_rewind" / "pg_control.target").exists()
    assert not (old.datadir / "global" / "pg_control").exists()

    info_args = {"target_pgdata": str(old.datadir), "source_server": fo.new_primary.conninfo()}
    version = old.datadir / "PG_VERSION"
    original = version.read_text()
    version.write_text("9\n")          # the journal and the data directory disagree
    mismatch = run_module("pg_rewind_info", info_args)
    version.write_text(original)
    assert mismatch["failed"] and mismatch["error_code"] == "interrupted_rewind_mismatch"

    info = run_module("pg_rewind_info", info_args)
    assert not info["failed"], info
    assert info["rewind_interrupted"] is True and info["rewind_required"] is True
    assert info["target"]["pg_major"] == major and info["reason"] == "interrupted"

    again = run_playbook(str(PLAYBOOK), _vars(fo))
    assert _changed(again) > 0
    assert ("recovery.conf" in os.listdir(old.datadir)) == (major < 12)
    assert (old.datadir / "standby.signal").exists() == (major >= 12)
    _assert_rejoined(fo)
