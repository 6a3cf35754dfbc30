"""The bench's byte counts: a child's bytes count once, whether the child is still
running at the end or was reaped by its parent long before (its bytes are then in the
parent's own counters)."""

import importlib.util
import sys
from pathlib import Path

import pytest

_SPEC = importlib.util.spec_from_file_location(
    "bench_measure", Path(__file__).resolve().parents[2] / "bench" / "measure.py")
measure_mod = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(measure_mod)

MB = 1024 * 1024

# The child writes 8 MB and lingers, so the bench samples it after its writes; the
# parent reaps it, lingers too (sampled with the child's bytes in its own counters),
# then writes 2 MB itself.
_REAPED_CHILD = """
import os, subprocess, sys, time
subprocess.run([sys.executable, "-c",
                "import os, time; f = os.open(os.devnull, os.O_WRONLY); "
                "[os.write(f, bytes(1 << 20)) for _ in range(8)]; time.sleep(0.3)"],
               check=True)
time.sleep(0.3)
f = os.open(os.devnull, os.O_WRONLY)
for _ in range(2):
    os.write(f, bytes(1 << 20))
time.sleep(0.3)
"""

# The child is still running when the parent writes and the bench samples last.
_LIVE_CHILD = """
import os, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c",
                          "import os, time; f = os.open(os.devnull, os.O_WRONLY); "
                          "[os.write(f, bytes(1 << 20)) for _ in range(8)]; time.sleep(1.5)"])
time.sleep(0.3)
f = os.open(os.devnull, os.O_WRONLY)
for _ in range(2):
    os.write(f, bytes(1 << 20))
time.sleep(0.5)
os._exit(0)
"""


@pytest.mark.parametrize("script", [_REAPED_CHILD, _LIVE_CHILD], ids=["reaped", "live"])
def test_bytes_written_by_a_child_count_once(script):
    row = measure_mod.measure([sys.executable, "-c", script])
    assert row["rc"] == 0, row["stderr"]
    # 10 MB written in all, plus the interpreters' own small writes
    assert 10 * MB <= row["written"] < 11 * MB, row["written"] / MB
