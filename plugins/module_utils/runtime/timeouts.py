# -*- coding: utf-8 -*-
# Copyright: pgops.rewind developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bounded time: the run's overall time limit, and a watchdog that ends a request to
the source that does not come back.

A hung source (a stopped process, a network that swallows packets) leaves libpq
blocked in a read that neither statement_timeout (the server is not running its
timer) nor TCP keepalives (the peer's kernel still answers) end. So each request to
the source is registered here with its expiry, and a watchdog thread shuts down the
socket of a request that is overdue: the blocked read returns at once, with an error
that the caller turns into a timeout. No signals: SIGALRM would only reach the main
thread, while requests also run in the fetch threads.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from contextlib import contextmanager
from typing import Optional

from ..errors import RewindError


class TimeLimit:
    """The overall `timeout` of a run (None or 0: unbounded), and the phase it is in."""

    def __init__(self, seconds: Optional[float] = None):
        self.seconds = seconds or 0
        self.expires = time.monotonic() + seconds if seconds else None
        self.phase = "start"

    def remaining(self) -> Optional[float]:
        if self.expires is None:
            return None
        return max(0.0, self.expires - time.monotonic())

    def expired(self) -> bool:
        return self.expires is not None and time.monotonic() >= self.expires

    def check(self, doing: str = "") -> None:
        if self.expired():
            raise self.error(doing)

    def error(self, doing: str = "") -> RewindError:
        return RewindError(
            "the rewind did not finish within its timeout of %s s: it stopped in phase %s%s."
            % (self.seconds, self.phase, (" while trying to " + doing) if doing else ""),
            code="timeout")


def bounded(*limits) -> Optional[float]:
    """The smallest of the given limits in seconds (None and 0 mean unbounded)."""
    given = [limit for limit in limits if limit]
    return min(given) if given else None


class Watchdog:
    """Shuts down the connection of a request that outlives its expiry (and with it
    every other request it guards: they all talk to the same hung source)."""

    def __init__(self):
        self._lock = threading.Condition()
        self._active = {}           # ticket -> (expiry, fileno)
        self._thread = None

    @contextmanager
    def guard(self, fileno: int, seconds: Optional[float]):
        """Run the body with the socket `fileno` shut down after `seconds` (None: never);
        the yielded ticket says whether that happened."""
        ticket = Ticket()
        if seconds is None:
            yield ticket
            return
        with self._lock:
            self._active[ticket] = (time.monotonic() + seconds, fileno)
            self._start()
            self._lock.notify()
        try:
            yield ticket
        finally:
            with self._lock:
                self._active.pop(ticket, None)

    def _start(self):
        if self._thread is None:
            self._thread = threading.Thread(target=self._watch, name="pgops-watchdog",
                                            daemon=True)
            self._thread.start()

    def _watch(self):
        with self._lock:
            while True:
                if not self._active:
                    self._lock.wait()
                    continue
                now = time.monotonic()
                soonest = min(expiry for expiry, _fd in self._active.values())
                if soonest > now:
                    self._lock.wait(soonest - now)
                    continue
                for ticket, (_expiry, fileno) in list(self._active.items()):
                    ticket.fired = True
                    _shut_down(fileno)
                self._active.clear()


class Ticket:
    """One guarded request; `fired` once the watchdog cut it off."""

    __slots__ = ("fired",)

    def __init__(self):
        self.fired = False


def _shut_down(fileno: int) -> None:
    """End every read and write on the socket (the owner keeps its descriptor)."""
    try:
        sock = socket.socket(fileno=os.dup(fileno))
    except OSError:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    finally:
        sock.close()
