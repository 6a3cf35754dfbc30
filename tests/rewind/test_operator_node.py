"""The database host as operators have it: the distribution's Python with its psycopg2
and nothing else (no crc32c package), the module run by root through Ansible with become
(su) to the data directory's owner, from the collection as built and installed.

The WAL scan then computes CRC-32C in pure Python; the rewind must be just as correct.
"""

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
