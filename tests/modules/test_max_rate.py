"""max_rate on real servers: a capped rewind (over several connections) and a capped
clone take at least what they read divided by the rate, say how long they waited, and
the node still rejoins with the new primary's data."""

import time

import pytest

from support.rewound import assert_follows_and_matches, rewind
from support.scenarios import failover

RATE = 8 << 20          # bytes per second (the scenario fetches some 40 MB)


@pytest.mark.parametrize("major", [11, 15, 18])
def test_capped_rewind_keeps_to_the_rate_and_rejoins(bed, collection, major):
    fo = failover(bed, major)
    started = time.monotonic()
    result = rewind(fo, max_rate="8M", parallel=4, sync=False)
    elapsed = time.monotonic() - started
    assert not result.get("failed"), result
    assert result["fetch_connections"] == 4
    read = result["bytes_fetched"]
    assert read > RATE, result          # enough for the cap to show
    assert result["rate_limit"]["bytes_per_second"] == RATE
    assert result["rate_limit"]["waited_s"] > 0
    # Charged before each request: the copy alone lasts at least bytes / rate.
    assert result["duration_s"]["copy"] >= read / RATE, (result["duration_s"], read)
    assert elapsed >= read / RATE
    assert_follows_and_matches(fo)


def test_capped_clone_keeps_to_the_rate_and_rejoins(bed, collection):
    fo = failover(bed, 15)
    rate = 16 << 20
    result = rewind(fo, max_rate="16M", fallback="clone", clone_when="always", sync=False,
                    clone_discard_old=True)
    assert not result.get("failed"), result
    assert result["path"] == "clone", result
    assert result["rate_limit"]["bytes_per_second"] == rate
    read = result["bytes_fetched"]
    assert read > rate, result
    copy = sum(result["duration_s"].values())
    assert copy >= read / rate, (result["duration_s"], read)
    assert_follows_and_matches(fo)


def test_a_bad_rate_is_refused_before_anything(bed, collection):
    fo = failover(bed, 15)
    result = rewind(fo, max_rate="1G")
    assert result["failed"] and result["error_code"] == "bad_parameters", result
    assert "pg_basebackup" in result["msg"]
