"""`molecule test` of the role's scenario (extensions/molecule/rejoin) on 11, 15 and 18:
create, fail over, check (a dry run), converge, idempotence, testinfra verify, destroy."""

import os
import subprocess

import pytest

from support.ansible import ansible_env
from support.env import COLLECTIONS_PATH, REPO, VENV_PYTHON
from support.lab import main as lab_main


@pytest.mark.xdist_group("molecule")      # one scenario directory: one run at a time
@pytest.mark.parametrize("major", [11, 15, 18])
def test_molecule_rejoin(collection, major, bed):
    env = ansible_env({
        "PATH": "%s:%s" % (VENV_PYTHON.parent, os.environ.get("PATH", "/usr/bin:/bin")),
        "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS_PATH),
        "PGOPS_MOLECULE_MAJOR": str(major),
        "PGOPS_LAB_DIR": str(bed.home / "lab"),
        "NO_COLOR": "1",
    })
    env.pop("ANSIBLE_STDOUT_CALLBACK", None)
    try:
        proc = subprocess.run([str(VENV_PYTHON.parent / "molecule"), "test", "-s", "rejoin"],
                              cwd=REPO, env=env, capture_output=True, text=True, timeout=1800, check=False)
    finally:   # whatever happened, no server of the lab keeps running
        lab_main(["destroy", "--dir", str(bed.home / "lab")])
    output = proc.stdout + proc.stderr
    (REPO / "tests" / "output").mkdir(exist_ok=True)
    (REPO / "tests" / "output" / ("molecule-%d.txt" % major)).write_text(output)
    assert proc.returncode == 0, output[-8000:]
    for step in ("create", "prepare", "check", "converge", "idempotence", "verify"):
        assert "%s: Executed: Successful" % step in output.replace("\x1b", ""), step
    assert "Dry run: 1 of 1 old primaries would be rejoined" in output
