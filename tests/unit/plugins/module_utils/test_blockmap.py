"""The changed-block map: compact, exact, serialisable."""

from ansible_collections.pgops.rewind.plugins.module_utils.pg.blockmap import ChangedBlocks, RelFileSegment, \
    block_runs


def test_blocks_per_segment_file_and_ranges():
    blocks = ChangedBlocks(relseg_size=131072)
    for blk in (5, 6, 7, 9, 131072 + 3, 0):
        blocks.add(1663, 5, 16384, blk)
    blocks.add(1663, 5, 16384, 6)             # repeated: counted once
    blocks.add(1664, 0, 1262, 0)
    assert len(blocks) == 7
    first = RelFileSegment(1663, 5, 16384, 0)
    assert blocks.blocks(first) == [0, 5, 6, 7, 9]
    assert list(block_runs(blocks.blocks(first))) == [(0, 1), (5, 3), (9, 1)]
    assert blocks.blocks(RelFileSegment(1663, 5, 16384, 1)) == [3]
    assert RelFileSegment(1663, 5, 16384, 1).path("PG_15_202209061") == "base/5/16384.1"
    assert RelFileSegment(1664, 0, 1262, 0).path("x") == "global/1262"
    assert RelFileSegment(16400, 5, 16384, 0).path("PG_15_202209061") == \
        "pg_tblspc/16400/PG_15_202209061/5/16384"
    again = ChangedBlocks.from_bytes(blocks.to_bytes())
    assert len(again) == 7 and again.segments() == blocks.segments()
    assert again.blocks(first) == blocks.blocks(first)


def test_runs_take_small_gaps_in_and_stay_bounded():
    blocks = [0, 1, 3, 6, 10, 11, 12, 13, 14, 30]
    assert list(block_runs(blocks)) == [(0, 2), (3, 1), (6, 1), (10, 5), (30, 1)]
    assert list(block_runs(blocks, max_gap=1)) == [(0, 4), (6, 1), (10, 5), (30, 1)]
    assert list(block_runs(blocks, max_gap=3)) == [(0, 15), (30, 1)]
    # a run never grows past max_blocks, gap included
    bounded = [(0, 4), (6, 1), (10, 4), (14, 1), (30, 1)]
    assert list(block_runs(blocks, max_blocks=4, max_gap=3)) == bounded
    assert list(block_runs([], max_gap=2)) == []


def _bitmap_bytes(blocks):
    """The memory the map holds: one bit per block of each relation segment it has."""
    return sum(len(bitmap) for bitmap in blocks._maps.values())


def test_memory_grows_with_changed_blocks_not_with_changes():
    blocks = ChangedBlocks()
    for _round in range(100):                       # the same hot block changed again and again
        for blk in range(1000):
            blocks.add(1663, 5, 16384, blk)
    assert len(blocks) == 1000
    assert _bitmap_bytes(blocks) <= 1000 // 8 + 1
