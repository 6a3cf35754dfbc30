"""A temporary directory of the test session, for every engine run (TMPDIR).

What the engine keeps in the temporary directory (restored WAL, progress files) then
stays out of the host's /tmp and can be checked when the session ends: no directory of
restored WAL may outlive its run (a killed run's is removed by the next run), and /tmp
holds no progress file named after one of this session's test beds (an engine run that
missed the session's TMPDIR would have left it there). Then the directory goes.
Only the process that made the directory checks and removes it: xdist workers, and a
pytest that a test runs inside this one, share it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

ENV = "PGOPS_TEST_TMPDIR"
_OWNER_ENV = "PGOPS_TEST_TMPDIR_OWNER"
_BEDS = ".beds"
LEFTOVERS = ("pgops-rewind-wal-*", ".pgops-rewind-new-*")


def use_session_tmpdir() -> Path:
    path = os.environ.get(ENV)
    if not path or not os.path.isdir(path):
        path = tempfile.mkdtemp(prefix="pgops-tests-", dir="/tmp")
        os.chmod(path, 0o1777)          # like /tmp: engine runs are other users
        os.environ[ENV] = path
        os.environ[_OWNER_ENV] = str(os.getpid())
    os.environ["TMPDIR"] = path
    tempfile.tempdir = path
    return Path(path)


def session_tmpdir() -> Path:
    return Path(os.environ.get(ENV) or use_session_tmpdir())


def note_bed(home: Path) -> None:
    """Remember a test bed's name: progress files in /tmp naming it are this session's."""
    with open(session_tmpdir() / _BEDS, "a") as beds:
        beds.write(home.name + "\n")


def check_and_remove_session_tmpdir() -> list:
    """What this session's engine runs left behind (paths); the directory is removed."""
    path = os.environ.get(ENV)
    if not path or os.environ.get(_OWNER_ENV) != str(os.getpid()) or not os.path.isdir(path):
        return []
    root = Path(path)
    left = sorted(str(p) for pattern in LEFTOVERS for p in root.glob(pattern))
    beds = (root / _BEDS).read_text().split() if (root / _BEDS).exists() else []
    for name in os.listdir("/tmp"):
        if name.startswith("pgops_rewind-progress-") and any(bed in name for bed in beds):
            left.append("/tmp/" + name)
    shutil.rmtree(root, ignore_errors=True)
    return left
