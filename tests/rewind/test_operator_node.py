"""The database host as operators have it: the distribution's Python with its psycopg2
and nothing else (no crc32c package), the module run by root through Ansible with become
(su) to the data directory's owner, from the collection as built and installed.

The WAL scan then computes CRC-32C without the optional package (libext2fs when the
host has it, else pure Python); the rewind must be just as correct, and a long stretch
of WAL is still read by several processes forked from the module under become.
"""

import os
import subprocess

import pytest

from support.rewound import assert_follows_and_matches, rewind
from support.scenarios import failover

SYSTEM_PYTHON = "/usr/bin/python3"


def _imports(module: str) -> bool:
    return subprocess.run([SYSTEM_PYTHON, "-c", "import " + module],
                          capture_output=True, check=False).returncode == 0


@pytest.mark.parametrize("major", [11, 18])
def test_rewind_with_system_python_and_psycopg2_only(bed, collection, major):
    assert _imports("psycopg2"), "Debian's python3-psycopg2 is missing: run make setup"
    assert not _imports("crc32c"), \
        "crc32c is importable by %s: this test must run without it" % SYSTEM_PYTHON
    fo = failover(bed, major)
    result = rewind(fo, python=SYSTEM_PYTHON)
    assert not result["failed"], result.get("msg")
    assert result["rewind_required"] and result["wal_bytes_scanned"] > 0
    assert result["blocks_copied"] > 0
    assert_follows_and_matches(fo)


def test_long_wal_read_by_several_processes_on_the_operator_node(bed, collection):
    """1 MB segments, about 40 of them written by the old primary after the fork: the
    scan splits (more than PARALLEL_SCAN_MIN_SEGMENTS) and its processes are forked by
    the module that su started, with the survey's connection to the source open."""
    cpus = os.cpu_count() or 1
    assert cpus >= 2, "one CPU: the scan cannot be split on this host, the test proves nothing"
    fo = failover(bed, 15, stop_mode=None, wal_segsize_mb=1)
    fo.old_primary.sql("INSERT INTO growing SELECT g, repeat('w', 200) "
                       "FROM generate_series(1, 120000) g")
    fo.old_primary.sql("UPDATE accounts SET balance = balance - 5 WHERE id % 3 = 0")
    fo.old_primary.stop()
    result = rewind(fo, python=SYSTEM_PYTHON)
    assert not result["failed"], result.get("msg")
    assert result["wal_bytes_scanned"] > 16 << 20, result["wal_bytes_scanned"]
    assert result["wal_scan_processes"] == min(4, cpus), result["wal_scan_processes"]
    assert result["wal_scan_ahead"] is True     # begun beside the walk back to the checkpoint
    growing = [r for r in result["discarded"]["relations"] if r["name"] == "growing"]
    assert [r["inserted"] for r in growing] == [5000 + 120000], growing   # parts add up
    assert_follows_and_matches(fo)
