# -*- coding: utf-8 -*-
# Copyright: pgops.rewind developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The whole job, in order: facts -> plan -> execute -> finish.

Everything before `Journal.begin` only reads (a refusal leaves the target
untouched); from there on the target cannot start until the rewind completes,
and running it again completes it.
"""

from __future__ import annotations

import os
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Optional

from .commands import RestoreCommand, cleanup, crash_recovery, find_postgres, \
    recovery_conf_setting, show_setting
from .controlfile import parse_control_file
from .errors import RefusedError
from .execute import drop_identical_copies, execute_plan
from .facts import facts_from_journal, gather_facts, journal_state, scan_target_changes, \
    target_facts
from .finish import finish, standby_configuration
from .filemap import COPY, DEFAULT_KEEP_FILES, build_plan
from .journal import Journal
from .progress import Progress, default_path
from .source import LocalSource, list_datadir, open_source
from .standby import without_recovery_settings
from .target import TargetDirectory, check_not_running, is_pending_rewind
from .walreserve import release_after_failed_run, released_on_failure, wal_reservation


@dataclass
class RewindOptions:
    target_pgdata: str
    source_server: Optional[str] = None
    source_pgdata: Optional[str] = None
    write_recovery_conf: bool = False
    primary_conninfo: Optional[str] = None
    keep_files: tuple = DEFAULT_KEEP_FILES
    ensure_shutdown: bool = True
    bindir: Optional[str] = None
    config_file: Optional[str] = None
    restore_command: Optional[str] = None
    restore_target_wal: bool = False
    parallel: int = 2
    sync: bool = True
    progress_file: Optional[str] = None    # None: progress.default_path(); "": none
    reserve_wal: bool = True               # a physical slot on the source (walreserve.py)
    slot_name: Optional[str] = None        # None: walreserve.default_slot_name()
    keep_slot: Optional[bool] = None       # None: as write_recovery_conf
    check_mode: bool = False


class PhaseTimer:
    """Seconds per phase, and the phase announced in the progress file."""

    def __init__(self, progress=None):
        self.durations = {}
        self.progress = progress

    @contextmanager
    def __call__(self, phase, total=0):
        if self.progress is not None:
            self.progress.phase(phase, total)
        started = time.monotonic()
        try:
            yield
        finally:
            self.durations[phase] = round(self.durations.get(phase, 0)
                                          + time.monotonic() - started, 3)


def run(options: RewindOptions) -> dict:
    """Rewind options.target_pgdata to follow the source; returns the result summary."""
    path = default_path(options.target_pgdata) if options.progress_file is None \
        else options.progress_file
    progress = Progress(None if options.check_mode else (path or None))
    try:
        result = _run(options, progress)
    except BaseException:
        progress.end(failed=True)
        raise
    progress.end()
    if progress.path:
        result["progress_file"] = progress.path
    result["progress_overhead"] = progress.overhead()
    return result


def _run(options: RewindOptions, progress: Progress) -> dict:
    if bool(options.source_server) == bool(options.source_pgdata):
        raise RefusedError("give exactly one of source_server or source_pgdata.",
                           code="bad_parameters")
    if options.write_recovery_conf and not (options.primary_conninfo or options.source_server):
        raise RefusedError("write_recovery_conf needs primary_conninfo when the source is a "
                           "local data directory.", code="bad_parameters")
    pgdata = os.path.abspath(options.target_pgdata)
    if not os.path.isdir(pgdata):
        raise RefusedError("target_pgdata %s is not a directory." % pgdata,
                           code="not_a_data_directory")
    timer = PhaseTimer(progress)
    result = {"changed": False}
    target = TargetDirectory(pgdata, sync=options.sync)
    target.check_writer()
    check_not_running(pgdata)
    journal = Journal(pgdata, sync=options.sync)
    if journal.exists():
        if journal.begun():
            return _resume(options, pgdata, target, journal, timer, result)
        if not options.check_mode:
            journal.discard()       # interrupted before it changed anything: start afresh
    restore_dir = tempfile.mkdtemp(prefix="pgops-rewind-wal-")
    source = reservation = None
    try:
        with timer("facts"):
            control = _cleanly_stopped_target(pgdata, options, result)
            if control is None:       # check mode with an unclean target: stop here
                result["duration_s"] = timer.durations
                return result
            source = open_source(options.source_server, options.source_pgdata, options.parallel)
            restore = _restore_command(options, control, pgdata, restore_dir)
            facts = gather_facts(pgdata, control, source, restore)
            _check_source(source, facts)
            reservation = wal_reservation(options)
            if reservation is not None and not (facts.rewind_required or reservation.keep):
                reservation = None      # nothing copied, and no slot for the standby
        result.update(facts.summary())
        result["target"] = control.summary()
        result["source"] = facts.source.summary()
        with released_on_failure(reservation, lambda: _complete(journal)):
            _reserve_wal(reservation, options, result)
            if facts.rewind_required:
                _rewind(options, pgdata, target, source, facts, restore, timer, result,
                        reservation)
            elif options.write_recovery_conf:
                standby_configuration(options, pgdata, target, control, result,
                                      _standby_slot(reservation))
    finally:
        if source is not None:
            source.close()
        cleanup(restore_dir)
    result["duration_s"] = timer.durations
    return result


def _cleanly_stopped_target(pgdata, options, result):
    """The target's control file, after crash recovery if it was not stopped cleanly
    (None in check mode, where that recovery cannot be run)."""
    control = target_facts(pgdata)
    result["target_state_before"] = control.state_name
    if control.cleanly_shut_down or is_pending_rewind(pgdata, control):
        return control
    if not options.ensure_shutdown:
        raise RefusedError("the target was not shut down cleanly (state: %s)." % control.state_name,
                           hint="Set ensure_shutdown: true to let the rewind finish crash "
                                "recovery first, or start and cleanly stop the server yourself.",
                           code="target_unclean")
    result["crash_recovery"] = True
    result["changed"] = True
    if options.check_mode:
        result["msg"] = ("the target was not shut down cleanly; a real run first finishes its "
                         "crash recovery, after which the rewind can be planned.")
        return None
    postgres = find_postgres(control.major, options.bindir)
    crash_recovery(postgres, pgdata, options.config_file)
    control = target_facts(pgdata)
    if not control.cleanly_shut_down:
        raise RefusedError("the target is still not cleanly shut down after crash recovery "
                           "(state: %s)." % control.state_name, code="target_unclean")
    return control


def _restore_command(options, control, pgdata, restore_dir):
    command = options.restore_command
    if not command and options.restore_target_wal:
        if control.fmt.recovery_conf:
            command = recovery_conf_setting(pgdata, "restore_command")
        else:
            postgres = find_postgres(control.major, options.bindir)
            command = show_setting(postgres, pgdata, "restore_command", options.config_file)
        if not command:
            raise RefusedError("restore_target_wal is set but the target has no restore_command.",
                               hint="Configure restore_command on the target or pass "
                                    "restore_command.", code="no_restore_command")
    if not command:
        return None
    return RestoreCommand(command, control.xlog_seg_size, restore_dir)


def _check_source(source, facts):
    if not source.full_page_writes(facts.source):
        raise RefusedError("full_page_writes is off on the source.",
                           hint="Turn full_page_writes on on the new primary (it is on by "
                                "default) and run again.", code="source_no_fpw")
    if isinstance(source, LocalSource) and not facts.source.cleanly_shut_down:
        raise RefusedError("the source data directory was not shut down cleanly (state: %s)."
                           % facts.source.state_name,
                           hint="Stop the source server cleanly, or use source_server.",
                           code="source_unclean")


def _reserve_wal(reservation, options, result) -> None:
    """Before anything is listed or copied, the slot that keeps the source's WAL (in check
    mode only the privilege and the name are checked)."""
    if reservation is None:
        return
    if options.check_mode:
        reservation.check()
    else:
        reservation.reserve()
        result["changed"] = result["changed"] or reservation.created
    result["slot"] = reservation.summary(options.check_mode)


def _standby_slot(reservation):
    """primary_slot_name for the standby configuration: the slot, when it is kept."""
    return reservation.name if reservation is not None and reservation.keep else None


def _complete(journal) -> bool:
    """The rewound pg_control is in place (the journal's last step may be left)."""
    try:
        return journal.exists() and journal.finished()
    except (OSError, ValueError):
        return False


def _rewind(options, pgdata, target, source, facts, restore, timer, result, reservation=None):
    with timer("wal_scan", facts.target_wal_end - facts.last_common_checkpoint.lsn):
        changes = scan_target_changes(pgdata, facts, restore,
                                      workers=min(4, os.cpu_count() or 1),
                                      progress=timer.progress)
    with timer("plan"):
        keep_files = tuple(options.keep_files)
        source_files = source.list_files()
        plan = build_plan(source_files, list_datadir(pgdata), changes.blocks,
                          facts.target.fmt.tablespace_dir, facts.keep_wal, keep_files,
                          facts.wal_copy_rule(source.wal_files_end(facts.source)))
        plan, identical, _spared = drop_identical_copies(plan, source, pgdata)
    summary = plan.summary()
    result.update({
        "changed": True,
        "files": summary["files"],
        "blocks_copied": summary["blocks_to_copy"],
        "bytes_to_fetch": summary["bytes_to_fetch"],
        "wal_bytes_scanned": changes.wal_bytes,
        "wal_records_scanned": changes.records,
        "changed_blocks": len(changes.blocks),
        "largest": plan.largest(),
        "files_identical": identical,
    })
    target.preflight(plan.actions)
    if options.check_mode:
        result["bytes_fetched"] = 0
        return
    journal = Journal(pgdata, sync=options.sync)
    state = journal_state(facts)
    if reservation is not None:
        state["wal_slot"] = reservation.journal_entry()
    journal.begin(state, changes.blocks, target.dir_mode)
    with timer("copy", summary["bytes_to_fetch"]):
        stats = execute_plan(plan, source, target, timer.progress,
                             exact_sizes=isinstance(source, LocalSource))
        _install_restored_wal(restore, facts.keep_wal, target)
        _sanitize_copied_auto_conf(plan, pgdata, target)
    result["bytes_fetched"] = stats.bytes_fetched
    with timer("finish"):
        finish(options, pgdata, target, source, facts, journal, result,
               standby_slot=_standby_slot(reservation))


def _resume(options, pgdata, target, journal, timer, result):
    """Complete a rewind that was interrupted after it began changing the target, from
    its journal (the target's own WAL after the fork is no longer needed)."""
    result.update(changed=True, resumed=True, rewind_required=True, reason="diverged")
    control = target_original = parse_control_file(journal.original_control(),
                                                   "the journal's copy of the target pg_control")
    state = journal.load()
    reservation = wal_reservation(options, state.get("wal_slot"))
    if journal.finished():
        if options.check_mode:
            return result
        journal.complete()          # only the clean-up was left
        result["resumed_from"] = "finish"
        if reservation is not None and reservation.keep:
            _reserve_wal(reservation, options, result)   # the standby's slot: still there
        if options.write_recovery_conf:
            standby_configuration(options, pgdata, target, control, result,
                                  _standby_slot(reservation))
        result["duration_s"] = timer.durations
        return result
    source = open_source(options.source_server, options.source_pgdata, options.parallel)
    try:
        with timer("facts"):
            facts = facts_from_journal(state, target_original, source)
            _check_source(source, facts)
        result.update(facts.summary())
        result["target"] = control.summary()
        result["source"] = facts.source.summary()
        result["resumed_from"] = "copy"
        _reserve_wal(reservation, options, result)
        if reservation is not None and state.get("wal_slot") != reservation.journal_entry() \
                and not options.check_mode:
            journal.update(wal_slot=reservation.journal_entry())
        blocks = journal.load_blocks()
        with timer("plan"):
            source_files = source.list_files()
            plan = build_plan(source_files, list_datadir(pgdata), blocks,
                              control.fmt.tablespace_dir, facts.keep_wal,
                              tuple(options.keep_files),
                              facts.wal_copy_rule(source.wal_files_end(facts.source)))
            plan, identical, _spared = drop_identical_copies(plan, source, pgdata)
        summary = plan.summary()
        result.update(files=summary["files"], blocks_copied=summary["blocks_to_copy"],
                      bytes_to_fetch=summary["bytes_to_fetch"], changed_blocks=len(blocks),
                      largest=plan.largest(), wal_bytes_scanned=0)
        target.preflight(plan.actions)
        if options.check_mode:
            result["bytes_fetched"] = 0
            return result
        with timer("copy", summary["bytes_to_fetch"]):
            stats = execute_plan(plan, source, target, timer.progress,
                                 exact_sizes=isinstance(source, LocalSource))
            _sanitize_copied_auto_conf(plan, pgdata, target)
        result["bytes_fetched"] = stats.bytes_fetched
        with timer("finish"):
            finish(options, pgdata, target, source, facts, journal, result,
                   standby_slot=_standby_slot(reservation))
    except BaseException as exc:
        release_after_failed_run(reservation, lambda: _complete(journal), exc)
        raise
    finally:
        source.close()
    result["duration_s"] = timer.durations
    return result


def _install_restored_wal(restore, keep_wal, target):
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


def _sanitize_copied_auto_conf(plan, pgdata, target):
    """postgresql.auto.conf copied from the source keeps the source's settings but not
    its upstream (which would be this very node)."""
    if any(a.path == "postgresql.auto.conf" and a.action == COPY for a in plan.actions):
        with open(os.path.join(pgdata, "postgresql.auto.conf")) as handle:
            text = handle.read()
        cleaned = without_recovery_settings(text)
        if cleaned != text:
            target.replace_file("postgresql.auto.conf", cleaned.encode())
