"""Bad input: a clear refusal that says what to do, and a target left byte for byte as it was."""

import os
import signal
import subprocess

import pytest

from support.ansible import run_module
from support.cluster import free_port
from support.digest import datadir_digest, differences
from support.env import COLLECTIONS_PATH, VENV_PYTHON
from support.rewound import rewind
from support.scenarios import failover

from support.env import TEST_PASSWORD as PASSWORD


@pytest.fixture
def fo(bed):
    return failover(bed, 15)


def _refused(fo, code, check=False, **args):
    before = datadir_digest(fo.old_primary.datadir)
    result = rewind(fo, check=check, **args)
    assert result["failed"], result
    assert result["error_code"] == code, (result["error_code"], result["msg"])
    assert result["hint"], "every refusal says what to do"
    assert "Traceback" not in result["msg"]
    assert differences(before, datadir_digest(fo.old_primary.datadir)) == []
    return result


def test_different_system(bed, collection, fo):
    stranger = bed.cluster("stranger", 15).init()
    stranger.start()
    result = _refused(fo, "different_system", source_server=stranger.conninfo())
    assert "different systems" in result["msg"]


def test_target_running(collection, fo):
    fo.old_primary.start()
    pids = []
    for pattern in (["-f", str(fo.old_primary.datadir)], ["-P", str(fo.old_primary.postmaster_pid())]):
        found = subprocess.run(["pgrep"] + pattern, capture_output=True, text=True, check=False)
        pids += [int(p) for p in found.stdout.split()]
    for pid in pids:                     # frozen: nothing may change while we look
        os.kill(pid, signal.SIGSTOP)
    try:
        result = _refused(fo, "target_running")
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)
    assert "running" in result["msg"]


def test_no_checksums_nor_wal_log_hints(bed, collection):
    fo = failover(bed, 14, checksums=False, wal_log_hints=False)
    result = _refused(fo, "no_hint_protection")
    assert "wal_log_hints" in result["msg"]


def test_source_unreachable(collection, fo):
    result = _refused(fo, "source_unreachable",
                      source_server="host=127.0.0.1 port=%d user=postgres connect_timeout=3"
                      % free_port())
    assert "cannot connect" in result["msg"]


def test_wrong_password(collection, fo):
    new = fo.new_primary
    new.sql("CREATE ROLE rewinder LOGIN PASSWORD 'right'")
    with open(new.datadir / "pg_hba.conf", "w") as hba:
        hba.write("local all all trust\nhost all postgres 127.0.0.1/32 trust\n"
                  "host all all 127.0.0.1/32 scram-sha-256\n")
    new.sql("SELECT pg_reload_conf()")
    result = _refused(fo, "source_unreachable", source_server=(
        "host=127.0.0.1 port=%d user=rewinder password=%s" % (new.port, PASSWORD)))
    assert PASSWORD not in result["_stdout"] + result["_stderr"]


def test_corrupt_target_wal(collection, fo):
    dry = rewind(fo, check=True)
    lsn = dry["last_common_checkpoint"]["lsn"]
    position = (int(lsn.split("/")[0], 16) << 32 | int(lsn.split("/")[1], 16)) + 100_000
    segment = fo.old_primary.datadir / "pg_wal" / ("00000001%08X%08X" % (
        position >> 32, (position & 0xFFFFFFFF) >> 24))
    with open(segment, "r+b") as handle:     # damage a record the scan must read
        handle.seek(position % (16 << 20))
        data = bytearray(handle.read(64))
        handle.seek(position % (16 << 20))
        handle.write(bytes(b ^ 0x5A for b in data))
    result = _refused(fo, "wal_corrupt")
    assert segment.name in result["msg"] or "checksum" in result["msg"] or "WAL" in result["msg"]


def test_source_without_full_page_writes(collection, fo):
    fo.new_primary.sql("ALTER SYSTEM SET full_page_writes = off")
    fo.new_primary.sql("SELECT pg_reload_conf()")
    fo.new_primary.wait_until(lambda: fo.new_primary.scalar("SHOW full_page_writes") == "off")
    _refused(fo, "source_no_fpw")


def test_unwritable_target_file(collection, fo):
    victim = fo.old_primary.datadir / "pg_xact" / "0000"
    os.chown(victim, 0, 0)                  # a file the owner can no longer write
    try:
        result = _refused(fo, "target_not_writable")
    finally:
        os.chown(victim, fo.old_primary.datadir.stat().st_uid, fo.old_primary.datadir.stat().st_gid)
    assert "pg_xact/0000" in result["msg"]


def test_local_source_without_primary_conninfo(collection, fo):
    fo.new_primary.stop()
    _refused(fo, "bad_parameters", source_pgdata=str(fo.new_primary.datadir))


def test_run_as_root(collection, fo):
    assert os.geteuid() == 0, "run the suite as root (make test) to prove this refusal"
    before = datadir_digest(fo.old_primary.datadir)
    result = run_module("pg_rewind", {"target_pgdata": str(fo.old_primary.datadir),
                                      "source_server": fo.new_primary.conninfo()}, become=False)
    assert result["failed"] and result["error_code"] == "run_as_root"
    assert "become_user" in result["hint"]
    assert differences(before, datadir_digest(fo.old_primary.datadir)) == []


def test_run_as_another_user(collection, fo):
    """The engine itself refuses a user who does not own the data directory. That user
    runs the installed collection (readable by all), not this clone, which may sit in a
    directory other users cannot enter."""
    assert os.geteuid() == 0, "the suite runs as root (make test): needed to switch to another user"
    before = datadir_digest(fo.old_primary.datadir)
    code = ("import sys; sys.path.insert(0, %r)\n"
            "from ansible_collections.pgops.rewind.plugins.module_utils.rewind import run, RewindOptions\n"
            "from ansible_collections.pgops.rewind.plugins.module_utils.errors import RewindError\n"
            "try:\n    run(RewindOptions(target_pgdata=%r, source_server=%r))\n"
            "except RewindError as exc:\n    print(exc.code)\n"
            % (str(COLLECTIONS_PATH), str(fo.old_primary.datadir), fo.new_primary.conninfo()))
    proc = subprocess.run([str(VENV_PYTHON), "-c", code], capture_output=True, text=True,
                          user="nobody", cwd="/tmp", check=False)
    assert proc.stdout.strip() == "not_owner", proc.stderr
    assert differences(before, datadir_digest(fo.old_primary.datadir)) == []


# A crashed target (stopped with -m immediate): every refusal comes before crash recovery,
# which would change the target. Check mode refuses the same way.
GRANTS_WITHOUT_LISTING = """
CREATE ROLE reader LOGIN;
GRANT EXECUTE ON FUNCTION pg_catalog.pg_stat_file(text, boolean) TO reader;
GRANT EXECUTE ON FUNCTION pg_catalog.pg_read_binary_file(text) TO reader;
GRANT EXECUTE ON FUNCTION pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean) TO reader;
CREATE ROLE nobody_special LOGIN;
"""


def test_crashed_target_refusals_come_before_crash_recovery(bed, collection, major):
    fo = failover(bed, major, stop_mode="immediate")
    assert rewind(fo, check=True)["target_state_before"] == "in production"
    new = fo.new_primary
    new.sql(GRANTS_WITHOUT_LISTING)
    stranger = bed.cluster("stranger", major).init()
    stranger.start()
    absent = "host=127.0.0.1 port=%d user=postgres connect_timeout=3" % free_port()
    refusals = [
        ("source_unreachable", absent, False),
        ("source_unreachable", absent, True),
        ("different_system", stranger.conninfo(), False),
        ("different_system", stranger.conninfo(), True),
        ("source_permission", new.conninfo(user="nobody_special") + " dbname=postgres", False),
        ("source_permission", new.conninfo(user="reader") + " dbname=postgres", False),    # may read, not list
        ("source_permission", new.conninfo(user="reader") + " dbname=postgres", True),
    ]
    for code, source, check in refusals:
        result = _refused(fo, code, source_server=source, check=check,
                          primary_conninfo=new.conninfo())
    assert "pg_ls_dir" in result["msg"]
    assert rewind(fo, check=True)["target_state_before"] == "in production"   # not recovered
