"""The rewound node's minimum recovery point is where the source's WAL ends, and an
idle source must not keep it from opening.

PostgreSQL reports its insert position as the start of the next record: when the last
record filled its page exactly, that is past the next page's header, where no record
ends and where a standby never gets to until the primary writes again. A new primary
that is idle after the failover (the moment an operator rewinds the old one) then held
the rewound standby "not yet consistent" for good: it was seen once in CI, a rewound
PostgreSQL 11 standby that never accepted connections (issue 20's stop 26).

The test makes the new primary's WAL end exactly at a page boundary, keeps its
background writer (the one process that writes WAL by itself here: autovacuum is off)
stopped so nothing moves it, rewinds, and then starts the rewound node against the
still idle source: it must open.
"""

import pytest

from ansible_collections.pgops.rewind.plugins.module_utils.pg.lsn import (
    XLOG_BLCKSZ, format_lsn, page_header_size, parse_lsn)

from support.engine import run_cli
from support.freeze import one_process_frozen
from support.rewound import assert_follows_and_matches
from support.scenarios import failover

OPEN_WITHIN_S = 60


def _insert_lsn(node) -> int:
    return parse_lsn(node.scalar("SELECT pg_current_wal_insert_lsn()::text"))


def end_wal_at_page_boundary(node, seg_size: int) -> int:
    """Emit a non-transactional logical message sized so that it ends exactly where a
    page ends; returns that page boundary. The record's size beyond the payload is 55
    bytes on 11-18 (record header, main-data header, message header, prefix); a miss
    that stays on its page corrects it from what the insert position moved."""
    emit = "SELECT pg_logical_emit_message(false, 'x', repeat('a', %d))"
    overhead = None
    for _attempt in range(6):
        start = _insert_lsn(node)
        left = XLOG_BLCKSZ - start % XLOG_BLCKSZ
        payload = left - (overhead or 55)
        if payload < 300:                    # too little room on this page: next page
            node.sql(emit % 1000)
            continue
        node.sql(emit % payload)
        after = _insert_lsn(node)
        boundary = start - start % XLOG_BLCKSZ + XLOG_BLCKSZ
        if after == boundary + page_header_size(boundary, seg_size):
            return boundary
        if after < boundary:                 # stayed on the page: 8-aligned, so the
            overhead = after - start - payload   # next try ends within 7 bytes of it
    raise AssertionError(f"{node}: could not end its WAL at a page boundary")


@pytest.mark.parametrize("major", [11, 15, 18])
def test_rewind_opens_against_an_idle_source_whose_wal_ends_at_a_page_boundary(
        bed, collection, major):
    fo = failover(bed, major)
    old, new = fo.old_primary, fo.new_primary
    seg_size = new.scalar("SELECT bytes_per_wal_segment FROM pg_control_init()")
    # The background writer logs a running-transactions record 15 s after other WAL.
    with one_process_frozen(new, "background writer"):
        boundary = end_wal_at_page_boundary(new, seg_size)
        new.wait_until(lambda: parse_lsn(new.scalar(
            "SELECT pg_current_wal_flush_lsn()::text")) == boundary, what="WAL flushed")
        result = run_cli("rewind", {"target_pgdata": str(old.datadir), "sync": False,
                                    "source_server": new.conninfo(),
                                    "primary_conninfo": new.conninfo(),
                                    "write_recovery_conf": True})
        assert result["_rc"] == 0 and result["changed"], result
        assert _insert_lsn(new) == boundary + page_header_size(boundary, seg_size), \
            "the source wrote WAL during the rewind: the case is not tested"
        # The last record's end, not the next record's start past the page header.
        assert result["min_recovery_point"]["lsn"] == format_lsn(boundary), result
        started = old.start(check=False, wait_s=OPEN_WITHIN_S)
        assert started.returncode == 0, "the rewound node did not open against the idle " \
            "source:\n%s" % old.log_tail()
        assert old.in_recovery()
        old.stop()
    assert_follows_and_matches(fo)
