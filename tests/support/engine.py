"""Run the engine's command line (the same code path as the modules) as the data
directory's owner, optionally with a fault injected."""

from __future__ import annotations

import json
import subprocess
import tempfile

from .env import COLLECTIONS_PATH, VENV_PYTHON, run_as_kwargs

CLI = "ansible_collections.pgops.rewind.plugins.module_utils.cli"


# One engine function called with keyword arguments (JSON on stdin); its result, or the
# engine error it raised, as JSON on stdout.
_CALL = """
import importlib, json, sys
from ansible_collections.pgops.rewind.plugins.module_utils.errors import RewindError
module, _dot, name = sys.argv[1].rpartition(".")
function = getattr(importlib.import_module(
    "ansible_collections.pgops.rewind.plugins.module_utils." + module), name)
try:
    result = function(**json.load(sys.stdin))
except RewindError as exc:
    result = {"failed": True, "msg": str(exc), "error_code": exc.code}
    print(json.dumps(result))
    sys.exit(1)
print(json.dumps(result))
"""


def _env(fault: str | None, extra_env: dict | None) -> dict:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(COLLECTIONS_PATH), "LANG": "C.UTF-8",
           "HOME": "/tmp", "TMPDIR": tempfile.gettempdir()}
    if fault:
        env["PGOPS_REWIND_FAULT"] = fault
    env.update(extra_env or {})
    return env


def call_engine(function: str, kwargs: dict, fault: str | None = None, timeout: float = 600,
                background: bool = False):
    """`function` ("standby.slots.ensure_physical_slot") called with kwargs in a process of
    its own; as run_cli: the result dict, or the Popen when background."""
    return _run([str(VENV_PYTHON), "-c", _CALL, function], kwargs, _env(fault, None), timeout,
                background)


def run_cli(command: str, params: dict, fault: str | None = None, timeout: float = 1200,
            background: bool = False, extra_env: dict | None = None):
    """The result dict (with "_rc", "_stderr"); or the Popen when background."""
    cmd = [str(VENV_PYTHON), "-m", CLI, command, "--json", "-"]
    return _run(cmd, params, _env(fault, extra_env), timeout, background)


def _run(cmd: list, params: dict, env: dict, timeout: float, background: bool):
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd="/tmp",
                            **run_as_kwargs())
    if background:
        proc.stdin.write(json.dumps(params))
        proc.stdin.close()
        return proc
    out, err = proc.communicate(json.dumps(params), timeout=timeout)
    try:
        result = json.loads(out) if out.strip() else {}
    except ValueError:
        result = {"_unparsed": out}
    result["_rc"] = proc.returncode
    result["_stderr"] = err
    return result
