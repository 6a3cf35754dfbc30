"""max_rate: pg_basebackup's units; one schedule for all threads, charged before each
request, so the bytes asked for never run ahead of the rate; the run's time limit
still ends a wait."""

import threading
import time

import pytest

from ansible_collections.pgops.rewind.plugins.module_utils.errors import RewindError
from ansible_collections.pgops.rewind.plugins.module_utils.runtime.ratelimit import (
    RateLimit, parse_rate)
from ansible_collections.pgops.rewind.plugins.module_utils.runtime.timeouts import TimeLimit


def test_units_as_pg_basebackup():
    assert parse_rate(0) == parse_rate(None) == parse_rate("0") == 0
    assert parse_rate(65536) == 65536
    assert parse_rate("32k") == 32768 and parse_rate("20M") == 20 << 20
    assert parse_rate("1024m") == 1 << 30
    for bad in ("fast", "1G", "-5", "1.5M", "31k", "1025M"):
        with pytest.raises(RewindError) as refused:
            parse_rate(bad)
        assert refused.value.code == "bad_parameters"


def test_no_limit_never_waits():
    limit = RateLimit(0)
    started = time.monotonic()
    limit.take(1 << 40)
    assert time.monotonic() - started < 0.1 and limit.report() is None


def test_threads_share_one_rate():
    limit = RateLimit(1 << 20)           # 1 MB/s
    started = time.monotonic()
    threads = [threading.Thread(target=limit.take, args=(256 << 10,)) for _unused in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    assert 1.0 <= elapsed < 2.0, elapsed       # 4 x 256 kB at 1 MB/s, not 4 x faster
    assert limit.report()["bytes_per_second"] == 1 << 20
    assert limit.report()["waited_s"] >= 2.0   # 0.25 + 0.5 + 0.75 + 1.0 s, summed


def test_the_time_limit_ends_a_wait():
    limit = RateLimit(32 << 10, TimeLimit(0.3))
    with pytest.raises(RewindError) as expired:
        limit.take(10 << 20)
    assert expired.value.code == "timeout" and "max_rate" in str(expired.value)


def test_what_was_not_sent_is_given_back():
    limit = RateLimit(1 << 20)
    limit.take(128 << 10)                   # 0.125 s
    limit.refund(1 << 30)                   # far more than owed: back to now, not before
    started = time.monotonic()
    limit.take(256 << 10)
    assert 0.2 <= time.monotonic() - started < 0.5
