"""Fixtures shared by every test: the PostgreSQL test bed and the installed collection."""

from __future__ import annotations

import os
import re
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))   # support/, also under ansible-test

from support.bed import Bed
from support.env import ALL_MAJORS


def pytest_configure(config):
    """Fresh test output for every run (the controller only, before workers start), and
    a temporary directory of this session for every engine run (see support.tmp)."""
    from support.env import OUTPUT
    from support.tmp import use_session_tmpdir
    if not hasattr(config, "workerinput"):
        for name in ("secret-leaks.txt", "ansible.log"):
            (OUTPUT / name).unlink(missing_ok=True)
    use_session_tmpdir()


def pytest_sessionfinish(session, exitstatus):
    """Nothing left in the temporary directory; no secret anywhere: every module result
    and warning (ansible.log), every saved output and every server log (checked as each
    test bed closes)."""
    from support.env import OUTPUT, TEST_PASSWORD
    from support.tmp import check_and_remove_session_tmpdir
    if hasattr(session.config, "workerinput"):
        return
    left = check_and_remove_session_tmpdir()
    print("\ntemporary files check: %s" % ("LEFT BEHIND: " + ", ".join(left) if left else "clean"))
    if left:
        session.exitstatus = 1
    if not OUTPUT.is_dir():
        return
    leaks = []
    if (OUTPUT / "secret-leaks.txt").exists():
        leaks += (OUTPUT / "secret-leaks.txt").read_text().splitlines()
    for path in OUTPUT.rglob("*"):
        if path.is_file() and path.name != "secret-leaks.txt" and \
                TEST_PASSWORD in path.read_text(errors="replace"):
            leaks.append(str(path.relative_to(OUTPUT)))
    checked = (OUTPUT / "ansible.log").exists()
    print("\nsecret check: %s (%s)" % (
        "LEAKED in " + ", ".join(leaks) if leaks else "clean",
        "ansible.log and saved outputs" if checked else "no module ran"))
    if leaks:
        session.exitstatus = 1


def pytest_collection_modifyitems(config, items):
    for item in items:
        item.add_marker(pytest.mark.timeout(1200))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture
def bed(request):
    """Clusters for this test; all servers are stopped when it ends, pass or fail."""
    label = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid)[-120:]
    bed = Bed(label)
    yield bed
    failed = any(getattr(request.node, f"rep_{when}", None) is not None
                 and getattr(request.node, f"rep_{when}").failed for when in ("setup", "call"))
    bed.close(keep_logs=failed)


@pytest.fixture(params=ALL_MAJORS, ids=lambda m: f"pg{m}")
def major(request):
    return request.param


@pytest.fixture(scope="session")
def collection():
    """The collection as built by ansible-galaxy and installed into the tests' collections path."""
    from support.collection import ensure_installed
    return ensure_installed()


def _engine_import_path():
    """Make `ansible_collections.pgops.rewind` importable from this checkout, so engine
    tests exercise the working tree (Ansible runs use the built, installed copy)."""
    from support.env import CACHE, REPO
    root = CACHE / "src"
    link = root / "ansible_collections" / "pgops" / "rewind"
    # The cache may be shared by several checkouts (PGOPS_CACHE_DIR, or CI's clones in
    # private directories): the link must lead to this one, not to whichever made it.
    if not (link.is_symlink() and os.readlink(link) == str(REPO)):
        link.parent.mkdir(parents=True, exist_ok=True)
        temporary = link.with_name("rewind.%d" % os.getpid())
        if temporary.is_symlink():
            temporary.unlink()
        temporary.symlink_to(REPO)
        os.replace(temporary, link)     # atomic: other workers see the old or the new
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))


_engine_import_path()
