"""Twin timelines: comparing WAL ranges by the files each history names (pure parts)."""

import pytest

from ansible_collections.pgops.rewind.plugins.module_utils.errors import RefusedError
from ansible_collections.pgops.rewind.plugins.module_utils.plan.facts import _journal_divergence
from ansible_collections.pgops.rewind.plugins.module_utils.pg.timeline import (
    Divergence, TimelineEntry, parse_history)
from ansible_collections.pgops.rewind.plugins.module_utils.pg.twins import (
    DIFFERENT, NOT_AVAILABLE, SAME, WalComparison, comparable_history, read_wal_range,
    same_timeline_diverged, shared_timeline_start)

SEG = 16 << 20
SWITCH = 0x3009608
HISTORY = parse_history("1\t0/3009608\tno recovery target specified\n", 2)


def _files(fill):
    """pg_wal of a node on timeline 2: segment 3 in 00000002 (it holds the switch)."""
    seg3 = bytearray(b"\x01" * SEG)
    seg3[SWITCH - 3 * SEG:] = fill * (4 * SEG - SWITCH)
    return {"pg_wal/000000010000000000000002": b"\x00" * SEG,
            "pg_wal/000000020000000000000003": bytes(seg3)}


def _reader(files):
    def read(path, offset, length):
        data = files.get(path)
        return None if data is None else data[offset:offset + length]
    return read


def test_read_wal_range_follows_the_history_across_segments():
    files = _files(b"\x02")
    data = read_wal_range(_reader(files), HISTORY, SEG, 3 * SEG - 10, 3 * SEG + 10)
    assert data == b"\x00" * 10 + b"\x01" * 10
    assert read_wal_range(_reader(files), HISTORY, SEG, 4 * SEG - 1, 4 * SEG + 1) is None


def _compare(target_fill, source_fill, source_files=True):
    source = _files(source_fill) if source_files else {}
    return WalComparison(_reader(_files(target_fill)), HISTORY, _reader(source), HISTORY,
                         SEG, 4 * SEG)


def test_twins_promoted_at_the_same_point_part_at_the_switch():
    whole = Divergence(2, 0, 1)
    compare = _compare(b"\x02", b"\x03")
    found = shared_timeline_start(whole, HISTORY, compare)
    assert (found.tli, found.lsn, found.target_index) == (1, SWITCH, 0)
    assert compare.compared[0]["result"] == DIFFERENT

    same = _compare(b"\x02", b"\x02")
    assert shared_timeline_start(whole, HISTORY, same) is whole
    assert same.compared[0]["result"] == SAME
    gone = _compare(b"\x02", b"\x03", source_files=False)
    assert shared_timeline_start(whole, HISTORY, gone) is whole
    assert gone.compared[0]["result"] == NOT_AVAILABLE


def test_same_timeline_diverged_goes_back_to_the_timeline_start_or_refuses():
    div = same_timeline_diverged(HISTORY, "latest checkpoint record")
    assert (div.tli, div.lsn, div.target_index) == (1, SWITCH, 0)
    with pytest.raises(RefusedError) as err:
        same_timeline_diverged([TimelineEntry(1, 0, None)], "latest checkpoint record")
    assert err.value.code == "same_timeline_diverged"


def test_missing_history_of_a_same_numbered_timeline_is_not_comparable():
    with pytest.raises(RefusedError) as err:
        comparable_history(2, {}.get, "source")
    assert err.value.code == "history_not_comparable"
    assert "00000002.history" in err.value.message and err.value.hint
    assert comparable_history(2, {"pg_wal/00000002.history": b"1\t0/3009608\tx\n"}.get,
                              "target") == HISTORY


def test_a_resumed_rewind_keeps_its_earlier_fork_inside_the_shared_history():
    found = Divergence(2, 0, 1)                   # identical history files
    kept = _journal_divergence({"tli": 1, "lsn": SWITCH}, found, HISTORY, HISTORY)
    assert (kept.tli, kept.lsn, kept.target_index) == (1, SWITCH, 0)
    other = parse_history("1\t0/2000000\tx\n", 2)  # the source's timeline 2 began elsewhere
    later = _journal_divergence({"tli": 1, "lsn": SWITCH}, Divergence(1, 0x2000000, 0),
                                other, HISTORY)
    assert later.lsn == 0x2000000                 # not shared: left to be refused
