"""The generated documents are current."""

import subprocess
import sys

from support.env import REPO


def test_generated_docs_are_current():
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "render_docs.py"), "--check"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
