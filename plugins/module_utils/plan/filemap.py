# -*- coding: utf-8 -*-
# Copyright: pgops.rewind developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The plan: one action per path, decided from both file lists and the changed blocks.

A pure function of its inputs (`build_plan`), so the plan can be printed (check
mode), counted, persisted and executed later. The rules follow PostgreSQL's own
rewind: relation files are patched block by block and truncated or extended to the
source's size; every other file the source has is copied whole; what only the
target has is removed, except what replay still needs or the operator keeps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from ..pg.blockmap import ChangedBlocks, block_runs
from ..pg.controlfile import CONTROL_PATH
from ..pg.datadir import (BLCKSZ, DEFAULT_KEEP_FILES, DIRECTORY, FILE, STANDBY_FILES, SYMLINK,
                          FileEntry, check_safe_path, is_excluded, is_state_dir, is_tablespace_link,
                          looks_like_relation, relation_segment)
from ..errors import RefusedError, SourceError

# Actions, in the order they are executed.
CREATE = "create"          # a directory or symlink the target lacks
COPY = "copy"              # the whole file from the source
COPY_TAIL = "copy_tail"    # a relation file the source has more of: copy the missing end
NONE = "none"              # nothing whole; possibly changed blocks
TRUNCATE = "truncate"      # a relation file the target has more of
REMOVE = "remove"          # only on the target
KEEP = "keep"              # the operator's file, or WAL replay still needs it
ACTION_ORDER = (CREATE, COPY, COPY_TAIL, NONE, TRUNCATE, REMOVE, KEEP)

# Changed blocks are fetched as runs of at most 1 MB, and blocks up to FILL_GAP_BLOCKS
# apart are fetched as one run with the unchanged blocks between them. Each request
# costs the source an open, a seek and a read at a random place of its disk (and a row
# of the answer), about what two more blocks in the same read cost: measured at the 1 %
# point of bench/ (31 074 runs, a third of them 1 or 2 blocks apart), the copy took
# 2.0-2.1 s instead of 2.4-2.8 s for a third more bytes. An unchanged block copied from
# the source is as safe as a changed one: replay from the last common checkpoint brings
# it to the source's state either way (design.md, "The copy pipeline").
MAX_RUN_BLOCKS = (1 << 20) // BLCKSZ
FILL_GAP_BLOCKS = 2


def fetch_runs(blocks) -> list:
    """The (first block, count) runs in which the ascending `blocks` are fetched."""
    return list(block_runs(blocks, MAX_RUN_BLOCKS, FILL_GAP_BLOCKS))


@dataclass
class FileAction:
    path: str
    action: str
    source_size: int = 0
    target_size: int = 0
    kind: str = FILE            # the type that matters for the action
    link_target: Optional[str] = None
    blocks: list = field(default_factory=list)   # changed blocks to fetch (block numbers)
    # (fetched in fetch_runs, with the unchanged blocks of small gaps between them)
    relation: bool = False

    @property
    def fetch_bytes(self) -> int:
        """Bytes this action reads from the source."""
        whole = {COPY: self.source_size, COPY_TAIL: self.source_size - self.target_size}
        return whole.get(self.action, 0) + BLCKSZ * sum(
            count for _first, count in fetch_runs(self.blocks))

    def as_dict(self) -> dict:
        return {"path": self.path, "action": self.action, "source_size": self.source_size,
                "target_size": self.target_size, "kind": self.kind,
                "link_target": self.link_target, "blocks": self.blocks,
                "relation": self.relation}

    @classmethod
    def from_dict(cls, data: dict) -> "FileAction":
        return cls(**data)


@dataclass
class Plan:
    actions: list

    def counts(self) -> dict:
        counts = {name: 0 for name in ACTION_ORDER}
        for act in self.actions:
            counts[act.action] += 1
        return counts

    @property
    def blocks(self) -> int:
        return sum(len(act.blocks) for act in self.actions)

    @property
    def fetch_bytes(self) -> int:
        return sum(act.fetch_bytes for act in self.actions)

    def summary(self) -> dict:
        counts = self.counts()
        return {
            "files": {
                "copied": counts[COPY],
                "copied_tail": counts[COPY_TAIL],
                "copied_blocks": sum(1 for a in self.actions if a.blocks),
                "truncated": counts[TRUNCATE],
                "removed": counts[REMOVE],
                "created": counts[CREATE],
                "kept": counts[KEEP],
            },
            "blocks_to_copy": self.blocks,
            "bytes_to_fetch": self.fetch_bytes,
        }

    def largest(self, count: int = 10) -> list:
        """The actions that read the most from the source (for diff output)."""
        costly = sorted((a for a in self.actions if a.fetch_bytes),
                        key=lambda a: a.fetch_bytes, reverse=True)
        return [{"path": a.path, "action": a.action, "bytes": a.fetch_bytes}
                for a in costly[:count]]


def _kept(path: str, keep_files) -> bool:
    return any(path == keep or path.startswith(keep.rstrip("/") + "/") for keep in keep_files)


def check_sane_entry(path: str, entry: FileEntry, relseg_bytes: int) -> None:
    """Sizes a real data directory can have; anything else is a broken or hostile source."""
    if entry.size < 0 or (relseg_bytes and entry.size > relseg_bytes and
                          looks_like_relation(path)):
        raise SourceError("the source lists %s with an impossible size of %d bytes."
                          % (path, entry.size), code="unsafe_path")
    if entry.kind == SYMLINK and entry.link_target is not None and \
            not entry.link_target.startswith("/"):
        raise SourceError("the source lists %s as a link to a relative path %r."
                          % (path, entry.link_target), code="unsafe_path")


def build_plan(source: dict, target: dict, changed: ChangedBlocks, tablespace_dir: str,
               keep_wal=(), keep_files=DEFAULT_KEEP_FILES, wal_rule=None) -> Plan:
    """One action per path from the source and target listings ({path: FileEntry});
    `wal_rule` (walcopy.WalCopyRule) spares WAL segments replay does not need."""
    keep_wal = {"pg_wal/" + name for name in keep_wal}
    relseg_bytes = changed.relseg_size * BLCKSZ
    actions = []
    for path in sorted(set(source) | set(target)):
        check_safe_path(path)
        if path in source:
            check_sane_entry(path, source[path], relseg_bytes)
        act = decide(path, source.get(path), target.get(path), tablespace_dir, keep_wal,
                     keep_files)
        if act is None:
            continue
        if wal_rule is not None and act.action in (COPY, REMOVE) and path.startswith("pg_wal/"):
            special = wal_rule.decide(path, path in source, act.source_size == act.target_size
                                      and path in target)
            if special == "skip":
                continue
            if special == "keep":
                act.action = KEEP
        if act.relation and act.action in (NONE, TRUNCATE, COPY_TAIL):
            segment = relation_segment(path, tablespace_dir)
            limit = min(act.source_size, act.target_size) // BLCKSZ
            act.blocks = [b for b in changed.blocks(segment) if b < limit]
        if act.action == NONE and not act.blocks:
            continue
        actions.append(act)
    order = {name: index for index, name in enumerate(ACTION_ORDER)}
    actions.sort(key=lambda a: (order[a.action], a.path))
    removals = [a for a in actions if a.action == REMOVE]
    removals.reverse()          # children before their directories
    actions = [a for a in actions if a.action != REMOVE] + removals
    return Plan(actions)


def decide(path, src: Optional[FileEntry], tgt: Optional[FileEntry], tablespace_dir,
           keep_wal, keep_files) -> Optional[FileAction]:
    """The action for one path (None: nothing to record)."""
    if path == CONTROL_PATH or ".DS_Store" in path:
        return None                                   # the control file is written last
    if is_state_dir(path):
        return None
    if path in STANDBY_FILES:
        return None
    if path == "pg_wal":                              # a symlink on either side is a directory
        return None
    source_size = src.size if src else 0
    target_size = tgt.size if tgt else 0
    if _kept(path, keep_files):          # the operator's: never copied, never removed
        return FileAction(path, KEEP, source_size, target_size, tgt.kind) if tgt else None
    if is_excluded(path):
        return FileAction(path, REMOVE, 0, target_size, tgt.kind) if tgt else None
    if tgt is None:
        if src.kind == FILE:
            return FileAction(path, COPY, source_size, 0, FILE)
        if src.kind == SYMLINK and not is_tablespace_link(path):
            raise SourceError("the source lists a symbolic link %s; only tablespace links "
                              "(pg_tblspc/<oid>) are created." % path, code="unsafe_path")
        return FileAction(path, CREATE, 0, 0, src.kind, src.link_target)
    if src is None:
        if path in keep_wal:
            return FileAction(path, KEEP, 0, target_size, tgt.kind)
        return FileAction(path, REMOVE, 0, target_size, tgt.kind)
    if src.kind != tgt.kind:
        raise RefusedError('"%s" is a %s in the source but a %s in the target.'
                           % (path, _TYPE_NAMES[src.kind], _TYPE_NAMES[tgt.kind]),
                           hint="Make the target's file layout match the source's (for "
                                "example a symlinked directory) and run again.",
                           code="type_mismatch")
    if src.kind != FILE:
        return None
    if path.endswith("PG_VERSION"):
        # Never overwritten (PostgreSQL's rule) -- unless the target's copy is not whole,
        # as when a rewind that was creating it was interrupted.
        if target_size == source_size:
            return None
        return FileAction(path, COPY, source_size, target_size, FILE)
    if relation_segment(path, tablespace_dir) is None:
        return FileAction(path, COPY, source_size, target_size, FILE)
    if target_size < source_size:
        action = COPY_TAIL
    elif target_size > source_size:
        action = TRUNCATE
    else:
        action = NONE
    return FileAction(path, action, source_size, target_size, FILE, relation=True)


_TYPE_NAMES = {FILE: "regular file", DIRECTORY: "directory", SYMLINK: "symbolic link"}
