"""Run the engine's command line (the same code path as the modules) as the data
directory's owner, optionally with a fault injected."""

from __future__ import annotations

import json
import subprocess
import tempfile

from .env import COLLECTIONS_PATH, VENV_PYTHON, run_as_kwargs

CLI = "ansible_collections.pgops.rewind.plugins.module_utils.cli"


def run_cli(command: str, params: dict, fault: str | None = None, timeout: float = 1200,
            background: bool = False, extra_env: dict | None = None):
    """The result dict (with "_rc", "_stderr"); or the Popen when background."""
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(COLLECTIONS_PATH), "LANG": "C.UTF-8",
           "HOME": "/tmp", "TMPDIR": tempfile.gettempdir()}
    if fault:
        env["PGOPS_REWIND_FAULT"] = fault
    env.update(extra_env or {})
    cmd = [str(VENV_PYTHON), "-m", CLI, command, "--json", "-"]
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
