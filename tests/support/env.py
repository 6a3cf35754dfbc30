"""Where the test bed finds things: the repository, the cache, PostgreSQL binaries, the OS user.

PostgreSQL refuses to run as root, so when the tests run as root every server (and
every engine run that writes a data directory) runs as the `postgres` OS user that
the Debian package creates. Run as an ordinary user, the tests use that user.
"""

from __future__ import annotations

import os
import pwd
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("PGOPS_CACHE_DIR", REPO / ".cache")).resolve()
VENV_PYTHON = CACHE / "venv" / "bin" / "python"
COLLECTIONS_PATH = CACHE / "collections"
DEBIAN_BINDIR = Path("/usr/lib/postgresql")
OUTPUT = REPO / "tests" / "output"
# The one password the tests give PostgreSQL roles; it must never show up in any
# module result, warning, error or log of the suite (checked when the session ends).
TEST_PASSWORD = "pgops-Test-Secret-7391"


class TestBedError(RuntimeError):
    """The test bed cannot do what a test asked (missing binaries, a server that will not start)."""


@dataclass(frozen=True)
class Major:
    number: int
    origin: str  # "npm" or "debian"
    version: str

    @property
    def bindir(self) -> Path:
        if self.origin == "debian":
            return DEBIAN_BINDIR / str(self.number) / "bin"
        return CACHE / "pg" / str(self.number) / "bin"


def _read_versions() -> dict[int, Major]:
    majors = {}
    for line in (REPO / "tests" / "pg_versions.txt").read_text().splitlines():
        fields = line.split("#", 1)[0].split()
        if fields:
            majors[int(fields[0])] = Major(int(fields[0]), fields[1], fields[2])
    return majors


MAJORS: dict[int, Major] = _read_versions()
ALL_MAJORS = sorted(MAJORS)


def bindir(major: int) -> Path:
    """The directory holding initdb/pg_ctl/postgres for `major`; fails loudly when absent."""
    try:
        path = MAJORS[major].bindir
    except KeyError:
        raise TestBedError(f"PostgreSQL {major} is not a supported major ({ALL_MAJORS})") from None
    if not (path / "postgres").is_file():
        raise TestBedError(
            f"PostgreSQL {major} binaries are missing in {path}; run scripts/setup.sh (make setup)")
    return path


def debian_tool(name: str, major: int = 15) -> Path:
    """A client tool of the Debian PostgreSQL package (pg_waldump, pg_rewind, ...)."""
    path = DEBIAN_BINDIR / str(major) / "bin" / name
    if not path.is_file():
        raise TestBedError(f"{path} is missing; run scripts/setup.sh (apt-get install postgresql-{major})")
    return path


def pg_os_user() -> str:
    """The OS user that owns data directories and runs servers."""
    if os.geteuid() == 0:
        return os.environ.get("PGOPS_PG_OS_USER", "postgres")
    return pwd.getpwuid(os.geteuid()).pw_name


def run_as_kwargs() -> dict:
    """subprocess keyword arguments that run a command as the PostgreSQL OS user."""
    if os.geteuid() != 0:
        return {}
    entry = pwd.getpwnam(pg_os_user())
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def pg_os_ids() -> tuple[int, int]:
    entry = pwd.getpwnam(pg_os_user())
    return entry.pw_uid, entry.pw_gid
