# -*- coding: utf-8 -*-
# Copyright: pgops.rewind developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Whole files the target already holds byte for byte are not copied.

Only an optimisation, decided before anything is written: the source checksums its
copy (SHA-256, only 64 hex digits travel), the target's is checksummed here.
"""

from __future__ import annotations

import os

from ..pg.datadir import DigestUnavailable, file_digest
from .filemap import COPY, Plan

DIGEST_MAX_SIZE = 64 << 20     # larger files are copied without comparing first


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
