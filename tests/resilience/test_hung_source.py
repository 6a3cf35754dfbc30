"""Bounded time (issue 13, item 5): a source that stops answering (every process of
the new primary stopped with SIGSTOP: connections are accepted, nothing replies) must
not hang the job. The run ends within its bound with a clear error; before the first
change the target is untouched, after it a rerun completes the rewind."""

import json
import time

import pytest

from support.ansible import run_module
from support.digest import datadir_digest, differences
from support.engine import run_cli
from support.freeze import frozen
from support.rewound import assert_follows_and_matches
from support.scenarios import failover

from resilience.test_source_faults import _cannot_start_as_primary, _paused_rewind


@pytest.mark.parametrize("major", [15, 17])
def test_hung_source_before_the_first_change(bed, collection, major):
    fo = failover(bed, major)
    target = str(fo.old_primary.datadir)
    before = datadir_digest(fo.old_primary.datadir)
    with frozen(fo.new_primary):
        began = time.monotonic()
        result = run_module("pg_rewind", {"target_pgdata": target, "sync": False,
                                          "source_server": fo.new_primary.conninfo(),
                                          "write_recovery_conf": True, "timeout": 8},
                            timeout=300)
        took = time.monotonic() - began
        assert result["failed"] and result["error_code"] == "timeout", result
        assert "within its timeout of 8 s" in result["msg"] and "phase facts" in result["msg"]
        assert took < 8 + 30, took           # ansible's own start-up included
        print("timeout 8 s: the module failed after %.1f s" % took)

        began = time.monotonic()
        info = run_module("pg_rewind_info", {"target_pgdata": target, "connect_timeout": 3,
                                             "source_server": fo.new_primary.conninfo()},
                          timeout=300)
        took = time.monotonic() - began
        assert info["failed"] and info["error_code"] == "source_timeout", info
        assert "within 3 s (connect_timeout)" in info["msg"]
        assert took < 3 + 30, took
        print("connect_timeout 3 s: pg_rewind_info failed after %.1f s" % took)
    assert differences(before, datadir_digest(fo.old_primary.datadir)) == []

    again = run_module("pg_rewind", {"target_pgdata": target, "sync": False,
                                     "source_server": fo.new_primary.conninfo(),
                                     "write_recovery_conf": True, "timeout": 600})
    assert not again["failed"] and again["changed"] and "resumed" not in again, again
    assert_follows_and_matches(fo)


@pytest.mark.parametrize("bound, code", [({"source_timeout": 3}, "source_timeout"),
                                         ({"timeout": 45, "source_timeout": 0}, "timeout")],
                         ids=["source_timeout", "timeout"])
def test_source_hangs_mid_copy(bed, collection, bound, code):
    fo = failover(bed, 15)
    started = time.monotonic()
    proc, marker, params = _paused_rewind(bed, fo, fo.new_primary, **bound)
    with frozen(fo.new_primary):
        released = time.monotonic()
        marker.unlink()
        out = proc.stdout.read()
        proc.wait(timeout=300)
        ended = time.monotonic()
    result = json.loads(out)
    print("%s: ended %.1f s after the source hung, %.1f s after the run began"
          % (bound, ended - released, ended - started))
    assert proc.returncode == 1 and result["error_code"] == code, result
    if code == "source_timeout":
        assert "did not answer within 3 s (source_timeout)" in result["msg"]
        assert ended - released < 3 + 5 + 10, ended - released
    else:
        assert "within its timeout of 45 s" in result["msg"]
        assert "phase copy" in result["msg"] or "phase finish" in result["msg"], result["msg"]
        assert 45 - 1 < ended - started < 45 + 10, ended - started
    _cannot_start_as_primary(fo.old_primary)

    params.pop("timeout", None)
    rerun = run_cli("rewind", params)
    assert rerun["_rc"] == 0 and rerun["resumed"] is True, rerun
    assert_follows_and_matches(fo)
