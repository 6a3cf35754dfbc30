# -*- coding: utf-8 -*-
# Copyright: pgops.rewind developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What can be said about a target whose rewind was interrupted.

While a rewind changes the target, its pg_control is set aside in the journal
(target/journal.py), so that PostgreSQL cannot start a half-rewound cluster. Whoever looks
at the target then -- pg_rewind_info, the role deciding which binaries and which
standby configuration the node needs before it runs the rewind again -- still needs
its major version and control data: the major from PG_VERSION, the rest from the
journal's copy of the original pg_control.
"""

from __future__ import annotations

import os
from typing import Optional

from ..pg.controlfile import CONTROL_PATH, parse_control_file
from ..errors import RefusedError
from .facts import facts_from_journal
from ..target.journal import Journal
from ..pg.lsn import format_lsn


def pg_version_major(pgdata: str) -> Optional[int]:
    """The major version PG_VERSION names (None when the file is missing or odd)."""
    try:
        with open(os.path.join(pgdata, "PG_VERSION")) as handle:
            text = handle.read(16).strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def is_interrupted(pgdata: str) -> bool:
    """A rewind began changing the target and did not complete."""
    return (not os.path.exists(os.path.join(pgdata, CONTROL_PATH))
            and Journal(pgdata).begun())


def interrupted_facts(pgdata: str, source=None) -> dict:
    """pg_rewind_info's answer for an interrupted rewind: the target as it was before
    the rewind began, and (given the source) whether the rewind can still complete
    against it. Reads only."""
    journal = Journal(pgdata)
    control = parse_control_file(journal.original_control(),
                                 "the journal's copy of the target pg_control")
    major = pg_version_major(pgdata)
    if major is not None and major != control.major:
        raise RefusedError(
            "%s holds an interrupted rewind of a PostgreSQL %d cluster, but its PG_VERSION "
            "says %d." % (pgdata, control.major, major),
            hint="The data directory was changed by something else: rebuild it from a base "
                 "backup of the new primary.", code="interrupted_rewind_mismatch")
    state = journal.load()
    target = control.summary()
    result = {
        "target": target,
        "rewind_interrupted": True,
        "rewind_required": True,
        "reason": "interrupted",
        "target_timeline": control.timeline,
        "divergence": {"timeline": state["divergence"]["tli"],
                       "lsn": format_lsn(state["divergence"]["lsn"])},
        "last_common_checkpoint": {
            "lsn": format_lsn(state["last_common_checkpoint"]["lsn"]),
            "timeline": state["last_common_checkpoint"]["tli"],
            "redo": format_lsn(state["last_common_checkpoint"]["redo"])},
        "target_wal_end": format_lsn(state["target_wal_end"]),
        "changed_blocks": len(journal.load_blocks()),
    }
    if source is not None:
        facts = facts_from_journal(state, control, source)   # refuses a source that moved on
        result["source"] = facts.source.summary()
        result["source_timeline"] = facts.source_timeline
    return result
