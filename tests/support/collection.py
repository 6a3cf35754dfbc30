"""Build the collection with ansible-galaxy and install it where the tests look for it.

Every test run goes through the same packaging a user gets from Galaxy, so a file
missing from the artifact (build_ignore, a module_utils not shipped) fails a test.
The build is skipped when the installed copy came from identical sources.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import subprocess
from pathlib import Path

from .env import CACHE, COLLECTIONS_PATH, REPO, VENV_PYTHON

INSTALLED = COLLECTIONS_PATH / "ansible_collections" / "pgops" / "rewind"
_PACKAGED = ("galaxy.yml", "meta", "plugins", "roles", "README.md", "requirements.txt",
             "docs", "playbooks", "changelogs", "bindep.txt", "CHANGELOG.rst")


def _source_digest() -> str:
    digest = hashlib.sha256()
    for top in _PACKAGED:
        path = REPO / top
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file()) \
            if path.exists() else []
        for file in files:
            if "__pycache__" in file.parts:
                continue
            digest.update(str(file.relative_to(REPO)).encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()


def ensure_installed() -> Path:
    """Build + install the collection unless the installed copy is current. Returns its path."""
    CACHE.mkdir(exist_ok=True)
    with open(CACHE / "collection.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        stamp = COLLECTIONS_PATH / ".source-digest"
        want = _source_digest()
        if INSTALLED.is_dir() and stamp.exists() and stamp.read_text() == want:
            return INSTALLED
        build_dir = CACHE / "build"
        build_dir.mkdir(exist_ok=True)
        bindir = Path(VENV_PYTHON).parent
        env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS_PATH))
        out = subprocess.run([bindir / "ansible-galaxy", "collection", "build", "--force",
                              "--output-path", build_dir, REPO], check=True, env=env,
                             capture_output=True, text=True, cwd=REPO).stdout
        tarball = out.strip().splitlines()[-1].split()[-1]
        subprocess.run([bindir / "ansible-galaxy", "collection", "install", "--force",
                        "-p", COLLECTIONS_PATH, tarball], check=True, env=env,
                       capture_output=True, text=True, cwd=REPO)
        subprocess.run(["chmod", "-R", "a+rX", str(COLLECTIONS_PATH)], check=True)
        stamp.write_text(want)
        return INSTALLED
