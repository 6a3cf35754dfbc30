# -*- coding: utf-8 -*-
# Copyright: pgops.rewind developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The WAL a rewound node must replay, and whether it can get every segment of it.

A rewound node replays from the last common checkpoint's redo point to the end of WAL
its pg_control names (the source's end, minRecoveryPoint). Each segment of that range
comes from its own pg_wal (kept from the common history, or copied from the source's),
or from restore_command; WAL the source wrote after it was listed is streamed, and the
run's slot keeps it. A new primary that keeps no extra WAL and checkpoints after the
failover may already have removed the first segments of its new timeline: a rewind
then "succeeds" and the node never becomes consistent ("requested WAL segment ... has
already been removed"). These are plain functions of plain values (names, ranges,
which side holds what), so they hold whatever rule decides which segments are copied.
"""

from __future__ import annotations

import posixpath
from typing import Iterable, Optional

from ..errors import RefusedError, RewindError
from ..pg.lsn import format_lsn, parse_segment_name, segment_name
from ..pg.timeline import timeline_of_segment

WAL_DIR = "pg_wal"
MISSING_CODE = "replay_wal_missing"


def replay_segments(history: list, start: int, end: int, seg_size: int) -> list:
    """The segment file names replay reads from `start` to `end` (exclusive), oldest
    first, each named by the timeline whose file holds it (the newest one begun
    before the segment ends: a switch segment is read from the newer timeline)."""
    if end <= start:
        end = start + 1
    names = []
    for segno in range(start // seg_size, (end - 1) // seg_size + 1):
        tli = timeline_of_segment(history, segno * seg_size, (segno + 1) * seg_size)
        names.append(segment_name(tli, segno, seg_size))
    return names


def listed_end(source_paths: Iterable[str], tli: int, seg_size: int, source_end: int) -> int:
    """Where the copy's WAL ends: the source's end of WAL, but no further than the end of
    the newest segment of its timeline `tli` that its listing saw (a segment begun after
    the listing is not copied: the node streams it, and the run's slot keeps it)."""
    listed = [parse_segment_name(name, seg_size) for name in wal_names(source_paths)]
    segnos = [seg[1] for seg in listed if seg is not None and seg[0] == tli]
    if not segnos:
        return source_end
    return min(source_end, (max(segnos) + 1) * seg_size)


def wal_names(paths: Iterable[str]) -> set:
    """The names of the files directly under pg_wal/ among `paths`."""
    return {posixpath.basename(p) for p in paths if posixpath.dirname(p) == WAL_DIR}


def first_missing(needed: list, present: set, restore_command: bool) -> Optional[str]:
    """The first segment of `needed` the node cannot get: not `present` in its pg_wal
    after the copy, and no restore_command to fetch it (None: every one is there)."""
    if restore_command:
        return None
    for name in needed:
        if name not in present:
            return name
    return None


def present_after_plan(actions, target_paths: Iterable[str]) -> set:
    """The pg_wal segment names the target holds once the plan ran: what it had and the
    plan does not remove, plus what the plan copies (actions: plan/filemap.py)."""
    removed = {a.path for a in actions if a.action == "remove"}
    copied = {a.path for a in actions if a.action in ("copy", "copy_tail")}
    return wal_names(p for p in target_paths if p not in removed) | wal_names(copied)


def check_replay_wal(needed: list, actions, target_paths: Iterable[str], restore_command: bool,
                     start: int, end: int) -> None:
    """Before the first write: refuse (target unchanged) when a segment replay needs will
    be neither in the target's pg_wal after the plan nor restorable."""
    missing = first_missing(needed, present_after_plan(actions, target_paths), restore_command)
    if missing is not None:
        raise missing_refusal(missing, start, end)


def _range_text(start: int, end: int) -> str:
    return "from %s (the last common checkpoint's redo) to %s" % (format_lsn(start),
                                                                  format_lsn(end))


def missing_refusal(name: str, start: int, end: int) -> RefusedError:
    """Before the first write: the node would never become consistent."""
    return RefusedError(
        "the rewound node could not get WAL segment %s, which it must replay %s: neither "
        "the source's pg_wal nor the target's has it any more, and no restore_command is "
        "given. A rewind would report success for a node that can never start as a "
        "standby; nothing was changed." % (name, _range_text(start, end)),
        hint="Give restore_command (role: pg_rewind_restore_command) fetching from the WAL "
             "archive, or set fallback: clone (role: pg_rewind_fallback: clone) to rebuild "
             "the node from the source. To avoid it next time, keep WAL on the new primary "
             "(wal_keep_size, an archive) until old primaries are rejoined.",
        code=MISSING_CODE)


def missing_after_copy(name: str, start: int, end: int) -> RewindError:
    """After the copy: a segment vanished from the source while the rewind copied."""
    return RewindError(
        "WAL segment %s, which the rewound node must replay %s, was removed from the "
        "source while the rewind copied (a checkpoint recycled it) and no restore_command "
        "can fetch it. The rewind is not complete: the node does not start." %
        (name, _range_text(start, end)),
        hint="Run the same task again with restore_command (role: pg_rewind_restore_command) "
             "fetching from the WAL archive, or rebuild the node with fallback: clone.",
        code=MISSING_CODE)
