# -*- coding: utf-8 -*-
# Copyright: pgops.rewind developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Carrying out a plan: create, fetch and write, truncate, remove; then what the copied
files need (WAL restored from the archive into pg_wal, the source's upstream out of
postgresql.auto.conf).

The source is asked for byte ranges in one stream (adjacent changed blocks merged
into ranges of up to 1 MB), and each chunk is written where it belongs as it
arrives, so memory holds one batch of chunks at a time whatever the rewind's size.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from ..pg.datadir import BLCKSZ, DIRECTORY, FILE
from ..errors import SourceError
from ..plan.filemap import COPY, COPY_TAIL, CREATE, REMOVE, TRUNCATE, fetch_runs
from ..plan.walneeds import first_missing, missing_after_copy
from ..standby.config import without_recovery_settings
from ..source.interface import running_server

CHUNK = 1 << 20


WRITTEN_BLOCKS = "relation_blocks"     # changed blocks and tails of relation files
WRITTEN_FILES = "whole_files"          # files copied whole (but WAL)
WRITTEN_WAL = "wal"                    # WAL segments and history files in pg_wal


@dataclass
class ExecutionStats:
    bytes_fetched: int = 0
    blocks_copied: int = 0
    files_vanished: int = 0
    bytes_written: dict = field(default_factory=lambda: dict.fromkeys(
        (WRITTEN_BLOCKS, WRITTEN_FILES, WRITTEN_WAL), 0))


def written_kind(path: str, whole: bool) -> str:
    """What a write into `path` counts as in ExecutionStats.bytes_written."""
    if path.startswith("pg_wal/"):
        return WRITTEN_WAL
    return WRITTEN_FILES if whole else WRITTEN_BLOCKS


def fetch_requests(actions, probe_growth=False):
    """(path, offset, length) ranges to read from the source, in plan order.

    probe_growth: ask one byte past the end of every whole file, so a file that grew
    since it was listed shows (a stopped source must not change)."""
    for act in actions:
        if act.action == COPY:
            if act.source_size < CHUNK:
                # A small file that grew since it was listed still comes whole.
                yield act.path, 0, CHUNK
            else:
                for offset in range(0, act.source_size, CHUNK):
                    yield act.path, offset, min(CHUNK, act.source_size - offset)
                if probe_growth:
                    yield act.path, act.source_size, 1
        elif act.action == COPY_TAIL:
            for offset in range(act.target_size, act.source_size, CHUNK):
                yield act.path, offset, min(CHUNK, act.source_size - offset)
        for first, count in fetch_runs(act.blocks):
            yield act.path, first * BLCKSZ, count * BLCKSZ


def execute_plan(plan, source, target, progress=None) -> ExecutionStats:
    """Apply `plan` to `target` (a TargetDirectory) with data from `source`.

    A stopped source's whole files must come back exactly as long as they were listed
    (else one changed underneath us: refuse); a running server's may have moved on.
    """
    exact_sizes = running_server(source) is None
    stats = ExecutionStats()
    for act in plan.actions:
        if act.action == CREATE:
            if act.kind == DIRECTORY:
                target.mkdir(act.path)
            else:
                target.symlink(act.path, act.link_target)
    copies = {act.path: act for act in plan.actions if act.action == COPY}
    for path in copies:
        target.create_empty(path)
    copied = dict.fromkeys(copies, 0)
    vanished = set()
    for path, offset, data in source.fetch(fetch_requests(plan.actions, exact_sizes)):
        if data is None:
            if path in copies and path not in vanished:
                vanished.add(path)      # deleted on the source meanwhile: so on the target
                target.remove(path, FILE)
            continue
        if path in vanished:
            continue
        target.write(path, offset, data)
        stats.bytes_fetched += len(data)
        stats.bytes_written[written_kind(path, path in copies)] += len(data)
        if path in copied:
            copied[path] += len(data)
        if progress is not None:
            progress.advance(len(data))
    if exact_sizes:
        for path, got in copied.items():
            if path not in vanished and got != copies[path].source_size:
                raise SourceError(
                    "size of source file %s changed while it was copied: %d bytes expected, "
                    "%d copied." % (path, copies[path].source_size, got),
                    hint="The source data directory must not change during the rewind: stop "
                         "whatever writes into it and run again.", code="source_changed")
    stats.files_vanished = len(vanished)
    stats.blocks_copied = plan.blocks
    for act in plan.actions:
        if act.action == TRUNCATE:
            target.truncate(act.path, act.source_size)
    for act in plan.actions:
        if act.action == REMOVE:
            target.remove(act.path, act.kind)
    return stats


def install_restored_wal(restore, keep_wal, target):
    """Segments fetched from the archive for the walk back to the last common checkpoint
    hold history replay needs: put them where replay looks."""
    if restore is None:
        return
    for name in restore.restored:
        if name in keep_wal:
            with open(os.path.join(restore.directory, name), "rb") as handle:
                target.create_empty("pg_wal/" + name)
                offset = 0
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    target.write("pg_wal/" + name, offset, chunk)
                    offset += len(chunk)


def complete_replay_wal(replay, source, target, restore, seg_size: int) -> list:
    """After the copy, before pg_control is written: every segment replay needs
    (`replay`: (names, start, end)) is in the target's pg_wal. One the source removed
    while it was copied is fetched again from it, else restored from the archive; when
    neither has it the run fails (a rerun with restore_command completes it) rather
    than end in a success that cannot start. Returns the names fetched again."""
    names, start, end = replay
    fetched = []
    while True:
        present = set(os.listdir(target.path("pg_wal")))
        missing = first_missing(names, present, False)
        if missing is None:
            return fetched
        data = source.read_file("pg_wal/" + missing)
        if (data is None or len(data) != seg_size) and restore is not None:
            restored = restore.fetch(missing)
            if restored is not None:
                with open(restored, "rb") as handle:
                    data = handle.read()
        if data is None or len(data) != seg_size:
            raise missing_after_copy(missing, start, end)
        target.create_empty("pg_wal/" + missing)
        target.write("pg_wal/" + missing, 0, data)
        fetched.append(missing)


def sanitize_copied_auto_conf(plan, pgdata, target):
    """postgresql.auto.conf copied from the source keeps the source's settings but not
    its upstream (which would be this very node)."""
    if any(a.path == "postgresql.auto.conf" and a.action == COPY for a in plan.actions):
        with open(os.path.join(pgdata, "postgresql.auto.conf")) as handle:
            text = handle.read()
        cleaned = without_recovery_settings(text)
        if cleaned != text:
            target.replace_file("postgresql.auto.conf", cleaned.encode())
