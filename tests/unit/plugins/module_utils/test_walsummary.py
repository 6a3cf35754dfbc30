"""Which WAL summaries cover a rewind's range, timeline by timeline (pure decisions), and
the block map's bulk OR. The bytes of real summaries are read in
tests/integration/test_wal_summaries.py."""

from ansible_collections.pgops.rewind.plugins.module_utils.pg.blockmap import ChangedBlocks
from ansible_collections.pgops.rewind.plugins.module_utils.pg.timeline import TimelineEntry
from ansible_collections.pgops.rewind.plugins.module_utils.wal.summary import (
    SummaryFile, coverage)

ONE = [TimelineEntry(1, 0, None)]
SWITCHED = [TimelineEntry(1, 0, 500), TimelineEntry(2, 500, None)]


def _summary(tli, start, end):
    return SummaryFile(tli, start, end, "%d-%d-%d" % (tli, start, end))


def test_contiguous_summaries_leave_only_the_tail():
    summaries = [_summary(1, 0, 100), _summary(1, 100, 200), _summary(1, 200, 300)]
    used, gaps = coverage(summaries, ONE, 150, 400)
    assert used == summaries[1:] and gaps == [(300, 400)]


def test_missing_summaries_are_gaps():
    summaries = [_summary(1, 200, 300), _summary(1, 350, 380)]
    used, gaps = coverage(summaries, ONE, 150, 400)
    assert used == summaries and gaps == [(150, 200), (300, 350), (380, 400)]


def test_summaries_of_other_timelines_cover_nothing():
    summaries = [_summary(2, 0, 1000)]
    assert coverage(summaries, ONE, 100, 400) == ([], [(100, 400)])


def test_each_timeline_only_where_the_history_reads_it():
    # Timeline 1 went on past 500 elsewhere: its summary covers the target only up to 500;
    # from there the target's history reads timeline 2, whose summary is missing.
    summaries = [_summary(1, 0, 800)]
    assert coverage(summaries, SWITCHED, 100, 900) == (summaries, [(500, 900)])
    summaries.append(_summary(2, 500, 700))
    used, gaps = coverage(summaries, SWITCHED, 100, 900)
    assert used == summaries and gaps == [(700, 900)]
    # A summary of timeline 2 from before its switch point covers nothing before it.
    assert coverage([_summary(2, 0, 900)], SWITCHED, 100, 900) == (
        [_summary(2, 0, 900)], [(100, 500)])


def test_overlapping_summaries_are_read_once_covered():
    summaries = [_summary(1, 0, 300), _summary(1, 100, 200), _summary(1, 250, 400)]
    used, gaps = coverage(summaries, ONE, 50, 400)
    assert used == [summaries[0], summaries[2]] and gaps == []


def test_add_bitmap_counts_new_blocks_only():
    blocks = ChangedBlocks(16)
    blocks.add(1663, 5, 100, 3)
    blocks.add_bitmap((1663, 5, 100, 0), bytes([0b00011000, 0b1]))   # blocks 3, 4, 8
    blocks.add_bitmap((1663, 5, 100, 1), bytes([0b10]))              # block 17
    assert len(blocks) == 4
    assert [tuple(s) for s in blocks.segments()] == [(1663, 5, 100, 0), (1663, 5, 100, 1)]
    assert blocks.blocks((1663, 5, 100, 0)) == [3, 4, 8]
    assert blocks.blocks((1663, 5, 100, 1)) == [1]
    assert ChangedBlocks.from_bytes(blocks.to_bytes()).blocks((1663, 5, 100, 0)) == [3, 4, 8]
