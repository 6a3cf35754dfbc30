# -*- coding: utf-8 -*-
# Copyright: pgops.rewind developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fault injection for the crash-safety tests; inert unless PGOPS_REWIND_FAULT is set.

Every change to the target counts as a step. With PGOPS_REWIND_FAULT set to
  kill:N          the process kills itself (SIGKILL) at step N, like kill -9;
  kill@TEXT       ... at the first step whose description starts with TEXT;
  pause:N:PATH    at step N it creates PATH and waits until the test removes it;
  count:PATH      the number of steps taken is written to PATH at each step.
"""

from __future__ import annotations

import os
import signal
import time

ENV = "PGOPS_REWIND_FAULT"
_steps = 0


def step(what: str = "") -> None:
    spec = os.environ.get(ENV)
    if not spec:
        return
    global _steps
    _steps += 1
    if spec.startswith("kill@"):
        if what.startswith(spec[5:]):
            os.kill(os.getpid(), signal.SIGKILL)
        return
    kind, _unused, arg = spec.partition(":")
    if kind == "kill" and _steps == int(arg):
        os.kill(os.getpid(), signal.SIGKILL)
    elif kind == "pause":
        number, _unused, path = arg.partition(":")
        if _steps == int(number):
            with open(path, "w") as marker:
                marker.write(what)
            while os.path.exists(path):
                time.sleep(0.05)
    elif kind == "count":
        with open(arg, "w") as counter:
            counter.write("%d %s\n" % (_steps, what))
