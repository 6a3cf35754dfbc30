# -*- coding: utf-8 -*-
# Copyright: pgops.rewind developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Carrying out a plan: create, fetch and write, truncate, remove.

The source is asked for byte ranges in one stream (adjacent changed blocks merged
into ranges of up to 1 MB), and each chunk is written where it belongs as it
arrives, so memory holds one batch of chunks at a time whatever the rewind's size.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

from .blockmap import block_runs
from .datadir import BLCKSZ, DIRECTORY, FILE
from .errors import SourceError
from .source import DigestUnavailable
from .filemap import COPY, COPY_TAIL, CREATE, REMOVE, TRUNCATE, Plan

DIGEST_MAX_SIZE = 64 << 20     # larger files are copied without comparing first

CHUNK = 1 << 20


@dataclass
class ExecutionStats:
    bytes_fetched: int = 0
    blocks_copied: int = 0
    files_vanished: int = 0


def block_ranges(blocks, max_blocks=CHUNK // BLCKSZ):
    """Ascending block numbers as (first, count) runs of at most one chunk."""
    return block_runs(blocks, max_blocks)


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
        for first, count in block_ranges(act.blocks):
            yield act.path, first * BLCKSZ, count * BLCKSZ


def file_digest(path: str):
    """SHA-256 (hex) of a local file, as the source computes it with sha256(bytea), or None
    when the file is gone. Raises DigestUnavailable when this Python cannot hash."""
    try:
        digest = hashlib.sha256()
    except Exception as exc:    # a crippled or policy-restricted hashlib
        raise DigestUnavailable("this host cannot compute SHA-256: %s" % exc) from None
    try:
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()


def whole_file_candidates(plan: Plan) -> list:
    """Whole-file copies the target may already hold byte for byte (same size, not huge)."""
    return [a for a in plan.actions if a.action == COPY and a.target_size == a.source_size
            and 0 < a.source_size <= DIGEST_MAX_SIZE]


def identical_files(candidates, source, target_root: str) -> set:
    """The candidates' paths whose copies are the same on both sides: the source
    checksums its copy (SHA-256, only 64 hex digits travel), the target's is checksummed
    here. DigestUnavailable when either side cannot."""
    if not candidates:
        return set()
    theirs = source.digests([(a.path, a.source_size) for a in candidates])
    return {a.path for a in candidates
            if theirs.get(a.path) and
            theirs[a.path] == file_digest(os.path.join(target_root, a.path))}


def drop_identical_copies(plan: Plan, source, target_root: str, warn=None,
                          survey=None) -> tuple:
    """Whole-file copies of files the target already has byte for byte are dropped.
    Only an optimisation: when either side cannot checksum (a role without EXECUTE on
    sha256, a FIPS host), everything is copied and `warn` is told. `survey`
    (survey.Survey) holds the comparisons made while the WAL scan ran.
    Returns (plan, files skipped, bytes not copied)."""
    candidates = whole_file_candidates(plan)
    if not candidates:
        return plan, 0, 0
    try:
        if survey is not None and survey.digest_problem:
            raise DigestUnavailable(survey.digest_problem)
        same = set(survey.identical) if survey is not None else set()
        unchecked = [a for a in candidates if survey is None or a.path not in survey.checked]
        same = (same & {a.path for a in candidates}) | \
            identical_files(unchecked, source, target_root)
    except DigestUnavailable as exc:
        if warn is not None:
            warn("could not checksum files to skip identical ones (%s); all %d candidate "
                 "file(s) are copied whole instead." % (exc, len(candidates)))
        return plan, 0, 0
    kept = [a for a in plan.actions if not (a.action == COPY and a.path in same)]
    skipped = sum(a.source_size for a in candidates if a.path in same)
    return Plan(kept), len(same), skipped


def execute_plan(plan, source, target, progress=None) -> ExecutionStats:
    """Apply `plan` to `target` (a TargetDirectory) with data from `source`.

    A stopped source's whole files must come back exactly as long as they were listed
    (else one changed underneath us: refuse); a running server's may have moved on.
    """
    exact_sizes = not source.is_running
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
