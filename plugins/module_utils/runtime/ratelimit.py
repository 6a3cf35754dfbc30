# -*- coding: utf-8 -*-
# Copyright: pgops.rewind developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""max_rate: what a run reads from the new primary, capped in bytes per second across
all its connections, as pg_basebackup's --max-rate caps a base backup.

One schedule shared by every fetch thread: each request is charged its bytes before it
is sent and waits until the schedule has room for them, so by any moment t after the
first request no more than max_rate * t bytes have been asked for. Charging before
(rather than after) keeps the cap a cap: a burst of large batches cannot overshoot it.
"""

from __future__ import annotations

import re
import threading
import time
from typing import Optional, Union

from ..errors import RefusedError

# pg_basebackup's --max-rate bounds (32 kB/s to 1024 MB/s), in bytes per second.
MIN_RATE = 32 << 10
MAX_RATE = 1024 << 20
_SUFFIXES = {"": 1, "k": 1 << 10, "m": 1 << 20}
_RATE = re.compile(r"^\s*(\d+)\s*([kKmM]?)\s*$")


def parse_rate(value: Union[int, str, None]) -> int:
    """Bytes per second from an int or a string with pg_basebackup's suffixes (k: kB/s,
    M: MB/s, 1024-based); 0 or None: no limit. Outside 32k..1024M is refused."""
    if value is None or value == "":
        return 0
    match = _RATE.match(str(value))
    if not match:
        raise RefusedError("max_rate %r is not a number of bytes per second (suffixes k and M "
                           "allowed, as with pg_basebackup --max-rate)." % (value,),
                           code="bad_parameters")
    rate = int(match.group(1)) * _SUFFIXES[match.group(2).lower()]
    if rate and not MIN_RATE <= rate <= MAX_RATE:
        raise RefusedError("max_rate must be 0 (no limit) or from 32k to 1024M bytes per "
                           "second, as pg_basebackup --max-rate; %r is not." % (value,),
                           code="bad_parameters")
    return rate


class RateLimit:
    """The shared schedule. `rate` 0: no limit (take() returns at once)."""

    def __init__(self, rate: int = 0, time_limit=None):
        self.rate = rate
        self.time_limit = time_limit
        self.waited = 0.0           # seconds requests spent waiting, summed over threads
        self._lock = threading.Lock()
        self._next = None           # when the bytes charged so far will have been paid for

    def take(self, nbytes: int, doing: str = "read from the source") -> None:
        """Charge `nbytes` and wait until the schedule has paid for them."""
        if not self.rate or nbytes <= 0:
            return
        with self._lock:
            now = time.monotonic()
            start = now if self._next is None else max(self._next, now)
            self._next = start + nbytes / self.rate
            wait = self._next - now
            self.waited += wait
        self._sleep(wait, doing)

    def refund(self, nbytes: int) -> None:
        """Give back what was charged and not sent (a request for a whole small file asks
        for more than the file holds), so the rate is met, not undercut."""
        if not self.rate or nbytes <= 0 or self._next is None:
            return
        with self._lock:
            self._next = max(time.monotonic(), self._next - nbytes / self.rate)

    def _sleep(self, seconds: float, doing: str) -> None:
        left: Optional[float] = self.time_limit.remaining() if self.time_limit else None
        if left is not None and left < seconds:
            time.sleep(left)
            raise self.time_limit.error(doing + " (held back by max_rate)")
        time.sleep(seconds)

    def report(self) -> Optional[dict]:
        """What the limit did, for the result; None without a limit."""
        if not self.rate:
            return None
        return {"bytes_per_second": self.rate, "waited_s": round(self.waited, 3)}
