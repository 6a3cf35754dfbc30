"""Run the collection's modules the way users do: through ansible, on localhost,
from the collection as built and installed, as the data directory's owner."""

from __future__ import annotations

import json
import os
import re
import subprocess

from .env import COLLECTIONS_PATH, REPO, VENV_PYTHON, pg_os_user

ANSIBLE_LOG = REPO / "tests" / "output" / "ansible.log"


def ansible_env(extra: dict | None = None) -> dict:
    ANSIBLE_LOG.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update({
        "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS_PATH),
        "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.minimal",
        "ANSIBLE_LOG_PATH": str(ANSIBLE_LOG),
        "ANSIBLE_HOST_KEY_CHECKING": "0",
        "ANSIBLE_LOCALHOST_WARNING": "0",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0",
        "ANSIBLE_PIPELINING": "1",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_DEPRECATION_WARNINGS": "0",
    })
    env.update(extra or {})
    return env


def become_args() -> list:
    if os.geteuid() != 0:
        return []
    return ["--become", "--become-user", pg_os_user(), "--become-method", "su"]


def run_module(module: str, args: dict, check: bool = False, diff: bool = False,
               become: bool = True, timeout: float = 1200, python: str | None = None,
               verbose: bool = False) -> dict:
    """Run pgops.rewind.<module> with `args`; returns the module result (failed ones too).
    `python`: the node's interpreter (default: the test venv's). verbose: as with -vvv,
    which adds the module's arguments to the result (invocation)."""
    cmd = [str(VENV_PYTHON.parent / "ansible"), "localhost", "-i", "localhost,", "-c", "local",
           "-e", "ansible_python_interpreter=%s" % (python or VENV_PYTHON),
           "-m", "pgops.rewind.%s" % module, "-a", json.dumps(args)]
    if become:
        cmd += become_args()
    if check:
        cmd.append("--check")
    if diff:
        cmd.append("--diff")
    if verbose:
        cmd.append("-vvv")
    proc = subprocess.run(cmd, env=ansible_env(), capture_output=True, text=True,
                          timeout=timeout, cwd="/tmp", check=False)
    try:    # "localhost | SUCCESS => {...}"
        result = json.loads(proc.stdout.split("=>", 1)[1])
    except (ValueError, IndexError):
        raise AssertionError("ansible produced no result (rc %d):\n%s\n%s"
                             % (proc.returncode, proc.stdout[-4000:], proc.stderr[-4000:]))
    result.setdefault("failed", "| FAILED!" in proc.stdout.split("=>", 1)[0])
    result["_stdout"] = proc.stdout
    result["_stderr"] = proc.stderr
    return result


def _playbook_command(playbook, extra_vars, check, diff, inventory, env):
    cmd = [str(VENV_PYTHON.parent / "ansible-playbook"), "-i", inventory, playbook,
           "-e", "ansible_python_interpreter=%s" % VENV_PYTHON]
    if extra_vars:
        cmd += ["-e", json.dumps(extra_vars)]
    if check:
        cmd.append("--check")
    if diff:
        cmd.append("--diff")
    environment = ansible_env({"ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.default",
                               "ANSIBLE_FORCE_COLOR": "0", **(env or {})})
    return cmd, environment


def start_playbook(playbook: str, extra_vars: dict | None = None, env: dict | None = None,
                   inventory: str = "localhost,") -> subprocess.Popen:
    """Start a playbook in a process group of its own (to be killed as a whole job)."""
    cmd, environment = _playbook_command(playbook, extra_vars, False, False, inventory, env)
    return subprocess.Popen(cmd, env=environment, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, cwd=str(REPO),
                            start_new_session=True)


def run_playbook(playbook: str, extra_vars: dict | None = None, check: bool = False,
                 diff: bool = False, inventory: str = "localhost,", timeout: float = 1800,
                 env: dict | None = None) -> dict:
    """Run a playbook (a path); returns rc, output and the recap counts per host."""
    cmd, environment = _playbook_command(playbook, extra_vars, check, diff, inventory, env)
    proc = subprocess.run(cmd, env=environment, capture_output=True, text=True,
                          timeout=timeout, cwd=str(REPO), check=False)
    recap = {}
    for line in proc.stdout.splitlines():
        match = re.match(r"^(\S+)\s+:\s+((?:\w+=\d+\s*)+)$", line.strip())
        if match:
            counts = re.findall(r"(\w+)=(\d+)", match.group(2))
            recap[match.group(1)] = {k: int(v) for k, v in counts}
    return {"rc": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr, "recap": recap}
