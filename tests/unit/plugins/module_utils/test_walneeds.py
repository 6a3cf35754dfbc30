"""The WAL a rewound node replays and whether it can get it (plan/walneeds.py), and the
check after the copy (apply/execute.complete_replay_wal): plain values, no server."""

import pytest

from ansible_collections.pgops.rewind.plugins.module_utils.apply.execute import \
    complete_replay_wal
from ansible_collections.pgops.rewind.plugins.module_utils.errors import RefusedError, RewindError
from ansible_collections.pgops.rewind.plugins.module_utils.pg.timeline import (
    Divergence, TimelineEntry, descends_from_current)
from ansible_collections.pgops.rewind.plugins.module_utils.plan.filemap import FileAction
from ansible_collections.pgops.rewind.plugins.module_utils.plan.walneeds import (
    check_replay_wal, first_missing, present_after_plan, replay_segments)

SEG = 16 << 20
HISTORY = [TimelineEntry(1, 0, 3 * SEG + 0x148), TimelineEntry(2, 3 * SEG + 0x148, None)]


def test_replay_reads_the_switch_segment_from_the_new_timeline():
    names = replay_segments(HISTORY, 2 * SEG + 0x28, 5 * SEG + 10, SEG)
    assert names == ["000000010000000000000002", "000000020000000000000003",
                     "000000020000000000000004", "000000020000000000000005"]


def test_an_end_on_a_segment_boundary_needs_no_further_segment():
    assert replay_segments(HISTORY, 4 * SEG, 5 * SEG, SEG) == ["000000020000000000000004"]


def test_present_after_plan_and_the_first_missing_segment():
    target = ["pg_wal/000000010000000000000002", "pg_wal/000000010000000000000003",
              "base/1/1234"]
    actions = [FileAction("pg_wal/000000010000000000000003", "remove"),
               FileAction("pg_wal/000000020000000000000004", "copy")]
    present = present_after_plan(actions, target)
    assert present == {"000000010000000000000002", "000000020000000000000004"}
    needed = replay_segments(HISTORY, 2 * SEG, 4 * SEG + 1, SEG)
    assert first_missing(needed, present, False) == "000000020000000000000003"
    assert first_missing(needed, present, True) is None      # restore_command may have it
    with pytest.raises(RefusedError) as refused:
        check_replay_wal(needed, actions, target, False, 2 * SEG, 4 * SEG + 1)
    assert refused.value.code == "replay_wal_missing"
    assert "000000020000000000000003" in str(refused.value)


def test_the_newer_primary_descends_from_the_sources_current_timeline():
    source = [TimelineEntry(1, 0, None)]
    assert descends_from_current(source, HISTORY, Divergence(1, 3 * SEG + 0x148, 0))
    # the right way round: the source went on past the target's timeline
    assert not descends_from_current(HISTORY, source, Divergence(1, 3 * SEG + 0x148, 0))
    # twins: the same timeline number, the fork found earlier (index 0 of a longer source)
    twin = [TimelineEntry(1, 0, 3 * SEG + 0x148), TimelineEntry(2, 3 * SEG + 0x148, None)]
    assert not descends_from_current(twin, HISTORY, Divergence(1, 2 * SEG, 0))


class _Target:
    def __init__(self, root, names):
        self.root = root
        (root / "pg_wal").mkdir()
        for name in names:
            (root / "pg_wal" / name).write_bytes(b"x" * 8)
        self.written = {}

    def path(self, rel):
        return str(self.root / rel)

    def create_empty(self, rel):
        (self.root / rel).write_bytes(b"")

    def write(self, rel, offset, data):
        with open(self.root / rel, "r+b") as handle:
            handle.seek(offset)
            handle.write(data)
        self.written[rel] = len(data)


class _Source:
    def __init__(self, files):
        self.files = files

    def read_file(self, path):
        return self.files.get(path)


def test_a_segment_recycled_during_the_copy_is_fetched_again(tmp_path):
    names = ["000000020000000000000003", "000000020000000000000004"]
    target = _Target(tmp_path, names[:1])
    source = _Source({"pg_wal/" + names[1]: b"w" * 64})
    assert complete_replay_wal((names, 0, 1), source, target, None, 64) == [names[1]]
    assert (tmp_path / "pg_wal" / names[1]).read_bytes() == b"w" * 64


def test_a_segment_gone_from_both_fails_the_run_before_it_completes(tmp_path):
    names = ["000000020000000000000003", "000000020000000000000004"]
    target = _Target(tmp_path, names[:1])
    with pytest.raises(RewindError) as failed:
        complete_replay_wal((names, 0, 1), _Source({}), target, None, 64)
    assert failed.value.code == "replay_wal_missing" and names[1] in str(failed.value)
    assert not isinstance(failed.value, RefusedError)


def test_the_copy_ends_with_the_newest_segment_the_listing_saw():
    from ansible_collections.pgops.rewind.plugins.module_utils.plan.walneeds import listed_end
    listed = ["pg_wal/000000020000000000000004", "pg_wal/000000020000000000000005",
              "pg_wal/000000010000000000000009", "base/1/1"]
    assert listed_end(listed, 2, SEG, 7 * SEG + 0xd8) == 6 * SEG    # 6 begun after the listing
    assert listed_end(listed, 2, SEG, 5 * SEG + 0xd8) == 5 * SEG + 0xd8
    assert listed_end(["base/1/1"], 2, SEG, 5 * SEG) == 5 * SEG
