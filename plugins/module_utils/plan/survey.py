# -*- coding: utf-8 -*-
# Copyright: pgops.rewind developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The part of a plan that does not depend on the WAL scan, taken while it runs.

Both file listings, how far the source's WAL goes, and which whole-file copies the
target already holds byte for byte: none of it needs the changed blocks (whole-file
actions are decided from the listings alone), so it is gathered in a thread while
the scan's processes read the target's WAL, instead of after them. The scan's main
process only waits for its parts, and this work mostly waits for the source.

Nothing is written here: a refusal found by the scan still leaves the target as it
was (why the copy itself does not start before the scan ends: docs/design.md).
PostgreSQL's pg_rewind lists both sides before its scan too.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Optional

from ..runtime import faults
from ..pg.blockmap import ChangedBlocks
from .identical import identical_files, whole_file_candidates
from .filemap import build_plan
from ..pg.datadir import DigestUnavailable, list_datadir


@dataclass
class Survey:
    source_files: dict
    target_files: dict
    source_wal_end: int
    identical: set = field(default_factory=set)   # whole-file copies the target already has
    checked: set = field(default_factory=set)     # the candidates that were compared
    digest_problem: Optional[str] = None          # why none could be compared


def take_survey(source, target_root: str, facts, keep_files) -> Survey:
    """List both sides and compare the whole-file candidates (see the module's text)."""
    faults.moment("survey")
    source_files = source.list_files()
    source_wal_end = source.wal_files_end(facts.source)
    target_files = list_datadir(target_root)
    survey = Survey(source_files, target_files, source_wal_end)
    whole_files = build_plan(source_files, target_files,
                             ChangedBlocks(facts.target.relseg_size),
                             facts.target.fmt.tablespace_dir, facts.keep_wal, keep_files,
                             facts.wal_copy_rule(source_wal_end))
    candidates = whole_file_candidates(whole_files)
    try:
        survey.identical = identical_files(candidates, source, target_root)
        survey.checked = {a.path for a in candidates}
    except DigestUnavailable as exc:
        survey.digest_problem = str(exc)
    return survey


class SurveyInBackground:
    """take_survey in a thread; result() waits for it and raises what it raised."""

    def __init__(self, source, target_root, facts, keep_files):
        self._outcome = None
        self._thread = threading.Thread(target=self._take, daemon=True,
                                        args=(source, target_root, facts, keep_files),
                                        name="pgops-rewind-survey")
        self._thread.start()

    def _take(self, *args):
        try:
            self._outcome = (take_survey(*args), None)
        except BaseException as exc:        # handed to the caller by result()
            self._outcome = (None, exc)

    def result(self) -> Survey:
        self._thread.join()
        survey, exc = self._outcome
        if exc is not None:
            raise exc
        return survey

    def wait(self, seconds: float) -> None:
        """Let a request in flight finish before the source's connection is closed."""
        self._thread.join(seconds)
