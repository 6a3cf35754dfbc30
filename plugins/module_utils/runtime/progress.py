# -*- coding: utf-8 -*-
# Copyright: pgops.rewind developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A small JSON file saying how far a rewind is, for an operator or a second task to
read while the module runs (Ansible modules cannot report before they finish).

It lives outside the data directory (a refusal must leave the target untouched) and
is rewritten at most once a second, so keeping it costs nothing measurable. Its usual
place is predictable, in a shared directory: it is never written through a link, and
when someone else holds that path the file goes to this user's private directory
(scratch.owned_path; `moved` says why).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from contextlib import contextmanager

from . import faults
from .scratch import owned_path, write_private_file
from .timeouts import TimeLimit

PHASES = ("facts", "wal_scan", "plan", "copy", "finish", "done", "failed")


def default_path(pgdata: str) -> str:
    """/tmp/pgops_rewind-progress-<data directory path>.json"""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", os.path.abspath(pgdata).strip("/"))
    return os.path.join(tempfile.gettempdir(), "pgops_rewind-progress-%s.json" % name)


class Progress:
    def __init__(self, path: str = None, interval: float = 1.0):
        self.path, self.moved = path, None
        if path:
            try:
                self.path, self.moved = owned_path(path)
            except OSError as exc:
                self.path, self.moved = None, "%s cannot be used safely (%s)" % (path, exc)
        self.interval = interval
        self.started = time.time()
        self._phase = None
        self._phase_started = self.started
        self.done = 0
        self.total = 0
        self.details = {}
        self._written = 0.0
        self.calls = 0
        self.cost_s = 0.0       # time spent keeping progress: the benchmark reports it

    def phase(self, name: str, total: int = 0, **details) -> None:
        """A new phase, `total` units of work long; `details` are shown beside it (the
        WAL scan: bytes skipped as common)."""
        began = time.perf_counter()
        self._phase, self._phase_started = name, time.time()
        self.done, self.total, self.details = 0, total, details
        self._write()
        self.cost_s += time.perf_counter() - began

    def advance(self, amount: int) -> None:
        self.update(self.done + amount)

    def update(self, done: int) -> None:
        began = time.perf_counter()
        self.done = done
        if time.time() - self._written >= self.interval:
            self._write()
        self.calls += 1
        self.cost_s += time.perf_counter() - began

    def end(self, failed: bool = False) -> None:
        self.phase("failed" if failed else "done")

    def overhead(self) -> dict:
        """What keeping progress cost this run (seconds, updates counted)."""
        return {"seconds": round(self.cost_s, 4), "updates": self.calls}

    def _write(self) -> None:
        if not self.path:
            return
        now = time.time()
        self._written = now
        elapsed = now - self._phase_started
        eta = None
        if self.total and self.done and self.done < self.total:
            eta = round(elapsed * (self.total - self.done) / self.done, 1)
        state = {"phase": self._phase, "done": self.done, "total": self.total,
                 "percent": round(100.0 * self.done / self.total, 1) if self.total else None,
                 "eta_s": eta, "phase_elapsed_s": round(elapsed, 1),
                 "elapsed_s": round(now - self.started, 1), "pid": os.getpid(),
                 "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        state.update(self.details)
        try:
            write_private_file(self.path, json.dumps(state).encode())
        except OSError:
            self.path = None        # progress is a courtesy: never fail the rewind over it


class PhaseTimer:
    """Seconds per phase, and the phase announced in the progress file."""

    def __init__(self, progress=None, limit=None):
        self.durations = {}
        self.progress = progress
        self.limit = limit or TimeLimit(None)

    def split(self, phase: str, part: str, seconds: float) -> None:
        """Report `seconds` of `phase` as a phase of their own (a step inside it that
        is worth seeing apart)."""
        seconds = min(seconds, self.durations.get(phase, 0))
        self.durations[phase] = round(self.durations.get(phase, 0) - seconds, 3)
        self.durations[part] = round(self.durations.get(part, 0) + seconds, 3)

    @contextmanager
    def __call__(self, phase, total=0, **details):
        self.limit.check()              # names the phase that used the time up
        self.limit.phase = phase
        if self.progress is not None:
            self.progress.phase(phase, total, **details)
        faults.moment("phase " + phase)
        started = time.monotonic()
        try:
            yield
        finally:
            self.durations[phase] = round(self.durations.get(phase, 0)
                                          + time.monotonic() - started, 3)
