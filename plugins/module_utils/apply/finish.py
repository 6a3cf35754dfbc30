# -*- coding: utf-8 -*-
# Copyright: pgops.rewind developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The last steps of a rewind, in the order that keeps it safe to interrupt.

Data files are made durable; backup_label sends replay back to the last common
checkpoint; the standby configuration is written; then the new pg_control (the
source's, in archive recovery until the source's current end of WAL) replaces the
one set aside: that single rename is the moment the rewind is complete. Until then
PostgreSQL cannot start the target; after it, it starts only to replay.
"""

from __future__ import annotations

import hashlib

from ..pg.controlfile import CONTROL_PATH
from ..standby.hot_standby import raise_settings
from ..pg.lsn import format_lsn
from ..standby.config import derive_primary_conninfo, raised_settings_file, standby_files
from ..target.directory import BACKUP_LABEL, backup_label_text, rewound_control_file


def finish(run, facts, journal) -> None:
    """The finish of a rewind (`run`: apply/context.py), from its facts and journal."""
    source, target = run.source, run.target
    after = source.control_file()
    source.check_unchanged(facts.source, facts.source_timeline, after)
    end_lsn, end_tli = source.end_of_wal(after)
    redo, tli, checkpoint = facts.replay_start()
    target.sync()
    target.replace_file(BACKUP_LABEL, backup_label_text(redo, tli, checkpoint,
                                                        facts.target.xlog_seg_size).encode())
    raised = raise_settings(run.options, run.pgdata, [after], run.result)   # the kept config
    node_configuration(run, facts.target, raised)
    control = rewound_control_file(after, end_lsn, end_tli)
    journal.update(final_control_sha256=hashlib.sha256(control).hexdigest())
    target.replace_file(CONTROL_PATH, control)          # the rewind is complete
    journal.complete()
    run.result["min_recovery_point"] = {"lsn": format_lsn(end_lsn), "timeline": end_tli}


def node_configuration(run, control, raised, target=None) -> None:
    """What a rewound or cloned node needs before it can start: the standby configuration
    with write_recovery_conf; else at least the raised hot-standby settings, since a node
    that someone else configures as a standby refuses to start without them."""
    if run.options.write_recovery_conf:
        standby_configuration(run, control, raised, target)
    else:
        raised_settings(run, raised, target)


def raised_settings(run, raised, target=None) -> None:
    """The raised hot-standby settings alone, in postgresql.auto.conf (reported, as
    always, in settings_raised)."""
    changes = raised_settings_file(run.pgdata if target is None else target.root, raised)
    if not run.options.check_mode:
        for rel, text in sorted(changes.items()):
            (target or run.target).replace_file(rel, text.encode("utf-8", "surrogateescape"))
    if changes:
        run.result["changed"] = True


def standby_configuration(run, control, raised=None, target=None) -> None:
    """recovery.conf (11) or standby.signal + primary_conninfo (12+), the raised
    hot-standby settings, and primary_slot_name when the standby streams through the
    rewind's slot: only what changes. `target`: the directory written when it is not the
    run's (a clone's new one)."""
    options, result, slot_name = run.options, run.result, run.standby_slot
    conninfo = options.primary_conninfo or derive_primary_conninfo(
        options.source_server, keep_dbname=control.major >= 17)
    changes = standby_files(run.pgdata, control.fmt.recovery_conf, conninfo,
                            {"primary_slot_name": slot_name} if slot_name else None,
                            raised=raised)
    if not options.check_mode:
        for rel, text in sorted(changes.items()):
            (target or run.target).replace_file(rel, text.encode("utf-8", "surrogateescape"))
    result["standby_files_written"] = sorted(changes)
    if changes:
        result["changed"] = True
