# -*- coding: utf-8 -*-
# Copyright: pgops.rewind developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fault injection for the crash-safety tests; inert unless PGOPS_REWIND_FAULT is set.

Every change to the target counts as a step. With PGOPS_REWIND_FAULT set to
  kill:N          the process kills itself (SIGKILL) at step N, like kill -9;
  kill@TEXT       ... at the first step whose description starts with TEXT;
  pause:N:PATH    at step N it creates PATH and waits until the test removes it;
  count:PATH      the number of steps taken is written to PATH at each step;
  pause@TEXT:PATH at the first step or moment whose description starts with TEXT it
                  creates PATH and waits until the test removes it.
A moment (`moment`) is a named point that changes nothing (a phase beginning, a WAL
scan process starting): only pause@ acts on it, and it is not counted as a step.
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
    if spec.startswith("pause@"):
        moment(what)
        return
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
            _pause(path, what)
    elif kind == "count":
        with open(arg, "w") as counter:
            counter.write("%d %s\n" % (_steps, what))


_paused = set()


def moment(what: str) -> None:
    """A named point of a run that changes nothing; pause@TEXT:PATH waits here once."""
    spec = os.environ.get(ENV)
    if not spec or not spec.startswith("pause@"):
        return
    text, _unused, path = spec[6:].partition(":")
    if what.startswith(text) and text not in _paused:
        _paused.add(text)
        _pause(path, what)


def _pause(path: str, what: str) -> None:
    with open(path, "w") as marker:
        marker.write("%d %s\n" % (os.getpid(), what))
    while os.path.exists(path):
        time.sleep(0.05)
