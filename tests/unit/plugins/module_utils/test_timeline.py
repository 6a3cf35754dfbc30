"""Timeline history parsing and fork detection (pure functions)."""

import pytest

from ansible_collections.pgops.rewind.plugins.module_utils.errors import TimelineError
from ansible_collections.pgops.rewind.plugins.module_utils.pg.timeline import (
    TimelineEntry, find_divergence, history_of, parse_history, timeline_of_segment)

REAL_2 = "1\t0/3009608\tno recovery target specified\n"   # as PostgreSQL writes it
REAL_3 = REAL_2 + "\n2\t0/5000A28\tno recovery target specified\n"


def test_parse_real_history_files():
    assert parse_history(REAL_2, 2) == [TimelineEntry(1, 0, 0x3009608),
                                        TimelineEntry(2, 0x3009608, None)]
    assert parse_history("# comment\n  \n" + REAL_3, 3) == [
        TimelineEntry(1, 0, 0x3009608), TimelineEntry(2, 0x3009608, 0x5000A28),
        TimelineEntry(3, 0x5000A28, None)]


@pytest.mark.parametrize("text, tli, code", [
    ("one\t0/1\treason\n", 2, "history_syntax"),
    ("1\tnot-an-lsn\n", 2, "history_syntax"),
    ("2\t0/10\n1\t0/20\n", 3, "history_invalid"),     # timelines out of order
    ("1\t0/10\n", 1, "history_invalid"),              # parent not below the child
    ("1\t0/30\n2\t0/20\n", 3, "history_invalid"),     # switch points going back
    ("", 2, "history_invalid"),                        # no parent at all
])
def test_malformed_history_is_a_clear_error(text, tli, code):
    with pytest.raises(TimelineError) as err:
        parse_history(text, tli, "pg_wal/%08X.history" % tli)
    assert err.value.code == code
    assert "%08X.history" % tli in str(err.value)


def test_history_of_reads_files_and_reports_missing_ones():
    files = {"pg_wal/00000002.history": REAL_2.encode()}
    assert history_of(1, files.get, "target") == [TimelineEntry(1, 0, None)]
    assert len(history_of(2, files.get, "source")) == 2
    with pytest.raises(TimelineError) as err:
        history_of(3, files.get, "source")
    assert err.value.code == "history_missing" and "00000003.history" in err.value.message
    with pytest.raises(TimelineError):
        history_of(2, {"pg_wal/00000002.history": b"\xff\xfe"}.get, "source")


def test_divergence_after_one_promotion():
    source = parse_history(REAL_2, 2)
    target = [TimelineEntry(1, 0, None)]
    div = find_divergence(source, target)
    assert (div.tli, div.lsn, div.target_index) == (1, 0x3009608, 0)


def test_divergence_after_two_promotions_and_target_on_a_branch():
    source = parse_history(REAL_3, 3)
    assert find_divergence(source, [TimelineEntry(1, 0, None)]).lsn == 0x3009608
    target = parse_history(REAL_2, 2)          # target stayed on timeline 2 and wrote on
    div = find_divergence(source, target)
    assert (div.tli, div.lsn, div.target_index) == (2, 0x5000A28, 1)


def test_same_timeline_number_created_independently_is_not_shared():
    source = parse_history("1\t0/3009608\treason\n", 2)
    target = parse_history("1\t0/4000000\treason\n", 2)
    div = find_divergence(source, target)
    assert (div.tli, div.lsn) == (1, 0x3009608)


def test_no_common_ancestor():
    with pytest.raises(TimelineError) as err:
        find_divergence([TimelineEntry(2, 0, None)], [TimelineEntry(1, 0, None)])
    assert err.value.code == "no_common_ancestor"


def test_segment_files_follow_the_history():
    seg = 16 << 20
    history = parse_history("1\t0/3009608\tr\n2\t0/5000000\tr\n", 3)
    assert timeline_of_segment(history, 2 * seg, 3 * seg) == 1
    assert timeline_of_segment(history, 3 * seg, 4 * seg) == 2   # holds the switch: newer file
    assert timeline_of_segment(history, 4 * seg, 5 * seg) == 2
    assert timeline_of_segment(history, 5 * seg, 6 * seg) == 3   # switch at a segment boundary
