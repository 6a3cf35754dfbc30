"""A hung server for the tests: every process of a cluster stopped with SIGSTOP (the
kernel still accepts connections and acknowledges packets, nothing answers), and
always continued again, whatever the test does in between."""

from __future__ import annotations

import contextlib
import os
import signal

from .cluster import Cluster


def _children(pid: int) -> list:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry))
    return found


@contextlib.contextmanager
def frozen(node: Cluster):
    """Stop the postmaster first (it forks nothing more), then its children; SIGCONT all
    of them on the way out."""
    postmaster = node.postmaster_pid()
    assert postmaster, f"{node} is not running"
    stopped = []
    try:
        os.kill(postmaster, signal.SIGSTOP)
        stopped.append(postmaster)
        for pid in _children(postmaster):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
                stopped.append(pid)
        yield stopped
    finally:
        for pid in stopped:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


@contextlib.contextmanager
def one_process_frozen(node: Cluster, title: str):
    """SIGSTOP the one child of the postmaster whose process title holds `title`
    ("background writer"); continued on the way out."""
    found = []
    for pid in _children(node.postmaster_pid()):
        with contextlib.suppress(OSError), open(f"/proc/{pid}/cmdline", "rb") as handle:
            if title.encode() in handle.read():
                found.append(pid)
    assert len(found) == 1, f"{node}: {len(found)} processes named {title!r}"
    os.kill(found[0], signal.SIGSTOP)
    try:
        yield found[0]
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(found[0], signal.SIGCONT)
