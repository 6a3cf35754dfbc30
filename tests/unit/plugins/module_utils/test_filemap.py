"""The file map's decision table (PostgreSQL's rules, plus resumability)."""

from ansible_collections.pgops.rewind.plugins.module_utils.pg.blockmap import ChangedBlocks
from ansible_collections.pgops.rewind.plugins.module_utils.pg.datadir import (
    DIRECTORY, FILE, SYMLINK, FileEntry, is_excluded, relation_segment)
from ansible_collections.pgops.rewind.plugins.module_utils.plan.filemap import (
    COPY, COPY_TAIL, CREATE, FILL_GAP_BLOCKS, KEEP, MAX_RUN_BLOCKS, NONE, REMOVE, TRUNCATE,
    build_plan, fetch_runs)
from ansible_collections.pgops.rewind.plugins.module_utils.apply.execute import fetch_requests
from ansible_collections.pgops.rewind.plugins.module_utils.plan.walcopy import WalCopyRule

TSDIR = "PG_16_202307071"
B = 8192


def _actions(source, target, changed=None, **kwargs):
    plan = build_plan(source, target, changed or ChangedBlocks(), TSDIR, **kwargs)
    return {a.path: (a.action, a.blocks) for a in plan.actions}


def test_relation_files_are_recognised_exactly():
    assert relation_segment("base/5/16384", TSDIR) == (1663, 5, 16384, 0)
    assert relation_segment("base/5/16384.3", TSDIR) == (1663, 5, 16384, 3)
    assert relation_segment("global/1262", TSDIR) == (1664, 0, 1262, 0)
    assert relation_segment("pg_tblspc/16400/%s/5/16384" % TSDIR, TSDIR) == (16400, 5, 16384, 0)
    for other in ("base/5/16384_fsm", "base/5/16384_vm", "base/5/16384_init", "base/5/016384",
                  "base/5/16384.0", "base/5/t3_16384", "base/5/16384.foo",
                  "pg_tblspc/16400/PG_15_202209061/5/16384", "base/5/pg_filenode.map"):
        assert relation_segment(other, TSDIR) is None, other


def test_exclusions():
    for path in ("postmaster.pid", "base/pgsql_tmp/x", "base/5/pgsql_tmp1.0", "pg_replslot/s/state",
                 "pg_stat_tmp/x", "global/pg_internal.init", "base/5/pg_internal.init.123",
                 "backup_label", "tablespace_map", "backup_manifest", "x/postmaster.opts"):
        assert is_excluded(path), path
    for path in ("pg_replslot", "backup_label.old", "pg_stat/pgstat.stat", "pg_wal/x"):
        assert not is_excluded(path), path


def test_decisions_and_blocks():
    changed = ChangedBlocks()
    for blk in (0, 3, 9, 40):
        changed.add(1663, 5, 16384, blk)
    changed.add(1663, 5, 16390, 1)
    source = {"base": FileEntry(DIRECTORY), "base/5": FileEntry(DIRECTORY),
              "base/5/16384": FileEntry(FILE, 20 * B),        # target larger: truncate
              "base/5/16390": FileEntry(FILE, 8 * B),         # target smaller: copy the tail
              "base/5/16400": FileEntry(FILE, 2 * B),         # only on the source
              "base/5/16384_vm": FileEntry(FILE, B),          # not a relation data file
              "base/5/PG_VERSION": FileEntry(FILE, 3),
              "pg_tblspc/16500": FileEntry(SYMLINK, 0, "/srv/ts"),
              "postmaster.pid": FileEntry(FILE, 80),
              "postgresql.conf": FileEntry(FILE, 100)}
    target = {"base": FileEntry(DIRECTORY), "base/5": FileEntry(DIRECTORY),
              "base/5/16384": FileEntry(FILE, 50 * B), "base/5/16390": FileEntry(FILE, 2 * B),
              "base/5/16384_vm": FileEntry(FILE, B), "base/5/PG_VERSION": FileEntry(FILE, 3),
              "base/5/16999": FileEntry(FILE, B),             # only on the target
              "postmaster.opts": FileEntry(FILE, 50), "postgresql.conf": FileEntry(FILE, 90)}
    got = _actions(source, target, changed)
    assert got["base/5/16384"] == (TRUNCATE, [0, 3, 9])      # block 40 is cut off anyway
    assert got["base/5/16390"] == (COPY_TAIL, [1])
    assert got["base/5/16400"] == (COPY, [])
    assert got["base/5/16384_vm"] == (COPY, [])
    assert got["pg_tblspc/16500"] == (CREATE, [])
    assert got["base/5/16999"] == (REMOVE, [])
    assert got["postmaster.opts"] == (REMOVE, [])
    assert got["postgresql.conf"] == (KEEP, [])               # the target's own configuration
    assert "base/5/PG_VERSION" not in got and "postmaster.pid" not in got
    assert "base" not in got


def test_a_partial_pg_version_is_copied_again():
    """An interrupted rewind may leave PG_VERSION empty: the resumed one copies it."""
    got = _actions({"base/9/PG_VERSION": FileEntry(FILE, 3)}, {"base/9/PG_VERSION": FileEntry(FILE, 0)})
    assert got == {"base/9/PG_VERSION": (COPY, [])}


def test_unchanged_relation_with_changed_blocks_only():
    changed = ChangedBlocks()
    changed.add(1663, 5, 16384, 7)
    got = _actions({"base/5/16384": FileEntry(FILE, 10 * B)},
                   {"base/5/16384": FileEntry(FILE, 10 * B)}, changed)
    assert got == {"base/5/16384": (NONE, [7])}


def test_close_changed_blocks_are_fetched_together_and_counted_so():
    """Blocks up to FILL_GAP_BLOCKS apart are one request, the gap included, and
    bytes_to_fetch (the disk-space check, the progress) counts what is fetched."""
    changed = ChangedBlocks()
    spread = [2, 4, 7, 11, 12, 300] + list(range(400, 400 + MAX_RUN_BLOCKS + 5))
    for block in spread:
        changed.add(1663, 5, 16384, block)
    plan = build_plan({"base/5/16384": FileEntry(FILE, 1000 * B)},
                      {"base/5/16384": FileEntry(FILE, 1000 * B)}, changed, TSDIR)
    (act,) = plan.actions
    assert act.blocks == spread and FILL_GAP_BLOCKS == 2
    assert fetch_runs(act.blocks) == [(2, 6), (11, 2), (300, 1), (400, MAX_RUN_BLOCKS),
                                      (400 + MAX_RUN_BLOCKS, 5)]
    requests = list(fetch_requests(plan.actions))
    assert requests == [("base/5/16384", first * B, count * B)
                        for first, count in fetch_runs(act.blocks)]
    assert plan.fetch_bytes == sum(length for _p, _o, length in requests) \
        == (6 + 2 + 1 + MAX_RUN_BLOCKS + 5) * B
    assert plan.summary()["blocks_to_copy"] == len(spread)      # the changed ones


def test_removals_come_children_first():
    plan = build_plan({}, {"d": FileEntry(DIRECTORY), "d/e": FileEntry(DIRECTORY),
                           "d/e/f": FileEntry(FILE, 1)}, ChangedBlocks(), TSDIR)
    assert [a.path for a in plan.actions] == ["d/e/f", "d/e", "d"]


def test_wal_copied_only_where_replay_needs_it():
    seg = 16 << 20
    rule = WalCopyRule(seg, redo=3 * seg + 100, divergence_lsn=5 * seg + 40,
                       common_timelines=frozenset({1}), source_end=8 * seg + 10)

    def name(tli, segno):
        return "pg_wal/%08X%08X%08X" % (tli, 0, segno)
    source = {name(1, 2): FileEntry(FILE, seg), name(1, 4): FileEntry(FILE, seg),
              name(1, 5): FileEntry(FILE, seg), name(2, 5): FileEntry(FILE, seg),
              name(2, 8): FileEntry(FILE, seg), name(2, 9): FileEntry(FILE, seg),
              "pg_wal/archive_status/%s.done" % name(1, 2)[7:]: FileEntry(FILE, 0),
              "pg_wal/00000002.history": FileEntry(FILE, 42)}
    target = {name(1, 4): FileEntry(FILE, seg), name(1, 5): FileEntry(FILE, seg),
              name(1, 6): FileEntry(FILE, seg)}
    got = _actions(source, target, wal_rule=rule)
    assert name(1, 2) not in got                    # before the redo point: not needed
    assert "pg_wal/archive_status/%s.done" % name(1, 2)[7:] not in got
    assert got[name(1, 4)][0] == KEEP               # shared history before the fork
    assert got[name(1, 5)][0] == COPY               # holds the fork: the source's copy
    assert got[name(2, 5)][0] == COPY and got[name(2, 8)][0] == COPY
    assert name(2, 9) not in got                    # preallocated beyond the source's end
    assert got[name(1, 6)][0] == REMOVE             # the target's own divergent WAL
    assert got["pg_wal/00000002.history"][0] == COPY
