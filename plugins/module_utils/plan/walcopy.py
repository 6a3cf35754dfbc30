# -*- coding: utf-8 -*-
# Copyright: pgops.rewind developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which WAL segment files a rewind must copy.

PostgreSQL 11-18's pg_rewind copies every WAL file the source has, although the
rewound target replays only from the last common checkpoint's redo point, and the
segments both sides have from before the fork hold the same history. Copying them is
most of the bytes of a typical rewind. Like pg_rewind in PostgreSQL 19:
  - a segment of a shared timeline that ends at or before the fork, present on both
    sides with the same size, is kept as the target has it;
  - a segment the source alone has that ends at or before the redo point is not
    needed for replay and is not copied (nor is its archive status file);
  - neither is one that starts beyond the source's end of WAL (a segment PostgreSQL
    preallocated or recycled ahead of time: it holds no WAL yet).
Everything else (the fork's segment, newer timelines, files of other names) follows
the general rules.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Optional

from ..pg.lsn import parse_segment_name

KEEP_TARGETS = "keep"      # both sides have it, identical history: leave the target's
SKIP = "skip"              # only the source has it and replay does not need it


@dataclass(frozen=True)
class WalCopyRule:
    seg_size: int
    redo: int                   # where replay starts (last common checkpoint's redo)
    divergence_lsn: int
    common_timelines: frozenset  # timelines both histories share (up to the fork)
    source_end: int = 1 << 64    # the source's WAL goes no further (when it was listed)

    def decide(self, path: str, in_source: bool, same_size: bool) -> Optional[str]:
        """KEEP_TARGETS, SKIP, or None (no special case) for a path under pg_wal/."""
        name = posixpath.basename(path)
        directory = posixpath.dirname(path)
        if directory == "pg_wal/archive_status":
            stem = name.split(".", 1)[0]
            segment = parse_segment_name(stem, self.seg_size)
            if segment and in_source and self._ends_before(segment, self.redo):
                return SKIP
            return None
        if directory != "pg_wal":
            return None
        segment = parse_segment_name(name, self.seg_size)
        if segment is None:
            return None
        if same_size and segment[0] in self.common_timelines and \
                self._ends_before(segment, self.divergence_lsn):
            return KEEP_TARGETS
        if in_source and (self._ends_before(segment, self.redo)
                          or segment[1] * self.seg_size >= self.source_end):
            return SKIP
        return None

    def _ends_before(self, segment, lsn) -> bool:
        return (segment[1] + 1) * self.seg_size <= lsn
