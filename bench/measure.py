"""Run a command and measure it: wall time, peak RSS, bytes it wrote and read (syscalls)."""

from __future__ import annotations

import os
import subprocess
import time


def _io(pid: int) -> dict:
    try:
        with open("/proc/%d/io" % pid) as handle:
            return {k: int(v) for k, v in (line.split(": ") for line in handle)}
    except OSError:
        return {}


def _peak_rss_kb(pid: int) -> int:
    try:
        with open("/proc/%d/status" % pid) as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _children(pid: int) -> list:
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as handle:
            return [int(c) for c in handle.read().split()]
    except OSError:
        return []


def measure(cmd, input_text=None, **popen_kwargs) -> dict:
    """Wall seconds, peak RSS (MB, the process and its children), bytes written/read
    through write()/read() calls (the process tree), exit code and output.

    The process's own counters grow by a child's when it reaps that child, so the bytes
    are the process's last sample plus the children still alive at that sample (a child
    sampled earlier and reaped since is in the process's counters already: adding its
    own last sample too counted its bytes twice, as the module run through Ansible
    showed, 2x the engine's bytes written in some runs)."""
    started = time.monotonic()
    proc = subprocess.Popen([str(c) for c in cmd], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **popen_kwargs)
    if input_text is not None:
        proc.stdin.write(input_text.encode())
    proc.stdin.close()
    totals, peaks = {}, {}
    out_chunks, err_chunks = [], []
    os.set_blocking(proc.stdout.fileno(), False)
    os.set_blocking(proc.stderr.fileno(), False)
    while proc.poll() is None:
        own = _io(proc.pid)             # first: a child reaped after this is listed below
        children = _children(proc.pid)
        if own:
            alive = [_io(pid) for pid in children]
            totals = {key: own.get(key, 0) + sum(c.get(key, 0) for c in alive)
                      for key in ("wchar", "rchar")}
        for pid in [proc.pid] + children:
            peaks[pid] = max(peaks.get(pid, 0), _peak_rss_kb(pid))
        for stream, chunks in ((proc.stdout, out_chunks), (proc.stderr, err_chunks)):
            data = stream.read()
            if data:
                chunks.append(data)
        time.sleep(0.02)
    elapsed = time.monotonic() - started
    for stream, chunks in ((proc.stdout, out_chunks), (proc.stderr, err_chunks)):
        rest = stream.read()
        if rest:
            chunks.append(rest)
    return {
        "seconds": elapsed,
        "rc": proc.returncode,
        "peak_rss_mb": max(peaks.values(), default=0) / 1024,
        "written": totals.get("wchar", 0),
        "read": totals.get("rchar", 0),
        "stdout": b"".join(out_chunks).decode(errors="replace"),
        "stderr": b"".join(err_chunks).decode(errors="replace"),
    }
