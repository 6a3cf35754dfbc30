# -*- coding: utf-8 -*-
# Copyright: pgops.rewind developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The whole job, in order: facts -> plan -> execute -> finish.

Everything before `Journal.begin` only reads (a refusal leaves the target
untouched); from there on the target cannot start until the rewind completes,
and running it again completes it.
"""

from __future__ import annotations

import json
import os

from .plan.assessment import PATH_CLONE, REWIND_IMPOSSIBLE, choose_path
from .apply.clone import clone_in_progress, lock_directory, resume_clone, run_clone
from .pg.controlfile import parse_control_file
from .pg.datadir import FILE, is_excluded
from .wal.discarded import discarded_report
from .errors import RefusedError, RewindError
from .apply.execute import execute_plan
from .plan.identical import drop_identical_copies
from .plan.facts import facts_from_journal, gather_facts, journal_state, scan_target_changes, \
    target_facts
from .apply.finish import finish, standby_configuration
from .plan.filemap import COPY, build_plan
from .standby.hot_standby import raise_settings
from .target.journal import Journal
from .options import RewindOptions
from .plan.preconditions import check_source, cleanly_stopped_target, restore_command_for, \
    validate_source
from .runtime.progress import PhaseTimer, Progress, default_path
from .target.runlock import RunLock
from .runtime.scratch import ScratchDirectory, sweep_dead, write_private_file
from .source.factory import open_source
from .standby.config import without_recovery_settings
from .plan.survey import SurveyInBackground, take_survey
from .target.directory import TargetDirectory, check_not_running
from .runtime.timeouts import TimeLimit
from .wal.summary import changes_source
from .standby.walreserve import release_after_failed_run, released_on_failure, wal_reservation


def run(options: RewindOptions) -> dict:
    """Rewind options.target_pgdata to follow the source; returns the result summary.
    One run at a time: the target is locked before anything is read (check mode too)."""
    locked = lock_directory(os.path.abspath(options.target_pgdata))
    if os.path.isdir(locked):
        TargetDirectory(locked).check_writer()      # a stat: who may lock it
    with RunLock(locked):
        return _run_locked(options)


def _run_locked(options: RewindOptions) -> dict:
    path = default_path(options.target_pgdata) if options.progress_file is None \
        else options.progress_file
    progress = Progress(None if options.check_mode else (path or None))
    try:
        result = _run(options, progress)
    except BaseException:
        progress.end(failed=True)
        raise
    progress.end()
    if options.discarded_file and not options.check_mode and result.get("discarded"):
        write_private_file(options.discarded_file,
                           json.dumps(result["discarded"], indent=1, sort_keys=True).encode())
        result["discarded_file"] = options.discarded_file
    if progress.path:
        result["progress_file"] = progress.path
    if progress.moved:
        _warner(result)("progress file: %s; it is written to %s instead."
                        % (progress.moved, progress.path or "no file"))
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
    interrupted_clone = clone_in_progress(pgdata)
    if interrupted_clone:       # (mid-swap the data directory itself may be missing)
        return _resume_clone(options, pgdata, interrupted_clone,
                             PhaseTimer(progress, TimeLimit(options.timeout)))
    if not os.path.isdir(pgdata):
        raise RefusedError("target_pgdata %s is not a directory." % pgdata,
                           code="not_a_data_directory")
    timer = PhaseTimer(progress, TimeLimit(options.timeout))
    result = {"changed": False}
    target = TargetDirectory(pgdata, sync=options.sync)
    target.check_writer()
    check_not_running(pgdata)
    sweep_dead()                # restored WAL left by this user's killed runs
    journal = Journal(pgdata, sync=options.sync)
    if journal.exists():
        if journal.begun():
            return _resume(options, pgdata, target, journal, timer, result)
        if not options.check_mode:
            journal.discard()       # interrupted before it changed anything: start afresh
    scratch = ScratchDirectory()        # WAL restored from the archive goes here
    restore_dir = scratch.path
    source = reservation = None
    try:
        with timer("facts"):
            control = target_facts(pgdata)
            source = _open_source(options, timer.limit)
            _report_tls(source, result)
            validate_source(source, control, options)   # before crash recovery changes it
            control = cleanly_stopped_target(pgdata, options, result, control)
            if control is None:       # check mode with an unclean target: stop here
                result["duration_s"] = timer.durations
                return result
            restore = restore_command_for(options, control, pgdata, restore_dir)
            impossible = None
            try:
                facts = gather_facts(pgdata, control, source, restore)
            except RewindError as exc:
                facts, impossible = None, exc
            if facts is not None:
                check_source(source, facts.source)
            reservation = wal_reservation(options)
            if reservation is not None and facts is not None and \
                    not (facts.rewind_required or reservation.keep):
                reservation = None      # nothing copied, and no slot for the standby
        if facts is None:
            with released_on_failure(reservation, lambda: False):
                _reserve_wal(reservation, options, result)
                _clone_instead(options, pgdata, source, impossible, timer, result, reservation)
            return result
        result.update(facts.summary())
        result["target"] = control.summary()
        result["source"] = facts.source.summary()
        # The standby replays the source's WAL (and, when not rewound, starts from its
        # own pg_control): checked now, while a refusal changes nothing.
        raised = raise_settings(options, pgdata, [facts.source] + (
            [] if facts.rewind_required else [control]), result)
        with released_on_failure(reservation, lambda: _complete(journal)):
            _reserve_wal(reservation, options, result)
            if facts.rewind_required and options.fallback == "clone" and \
                    options.clone_when == "always":
                _clone_instead(options, pgdata, source, _CloneIsCheaper("clone_when: always"),
                               timer, result, reservation)
            elif facts.rewind_required:
                try:
                    _rewind(options, pgdata, target, source, facts, restore, timer, result,
                            reservation)
                except (RewindError, _CloneIsCheaper) as exc:
                    if Journal(pgdata).begun():
                        raise
                    _clone_instead(options, pgdata, source, exc, timer, result, reservation)
            elif options.write_recovery_conf:
                check_not_running(pgdata)
                standby_configuration(options, pgdata, target, control, result, raised,
                                      _standby_slot(reservation))
    finally:
        if source is not None:
            source.close()
        scratch.remove()
    result["duration_s"] = timer.durations
    return result


def _clone_instead(options, pgdata, source, exc, timer, result, reservation=None):
    """A rewind is impossible or dearer (`exc` says why): clone when the operator allows."""
    if isinstance(exc, _CloneIsCheaper):
        reason = str(exc)
    elif options.fallback == "clone" and exc.code in REWIND_IMPOSSIBLE:
        reason = "%s (%s)" % (REWIND_IMPOSSIBLE[exc.code], exc)
    else:
        raise exc
    run_clone(options, pgdata, source, reason, timer, result, _standby_slot(reservation))
    result["duration_s"] = timer.durations


def _resume_clone(options, pgdata, where, timer):
    result = {"changed": True}
    TargetDirectory(where, sync=options.sync).check_writer()
    check_not_running(where)
    source = _open_source(options, timer.limit)
    reservation = wal_reservation(options)
    try:
        with released_on_failure(reservation, lambda: False):
            _reserve_wal(reservation, options, result)
            resume_clone(options, pgdata, where, source, timer, result,
                         _standby_slot(reservation))
    finally:
        source.close()
    result["duration_s"] = timer.durations
    return result


class _CloneIsCheaper(Exception):
    """A clone was chosen over a possible rewind (clone_when: cheaper or always)."""


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
    keep_files = tuple(options.keep_files)
    survey = SurveyInBackground(source, pgdata, facts, keep_files)   # while the scan runs
    try:
        with timer("wal_scan", facts.target_wal_end - facts.last_common_checkpoint.lsn):
            changes = scan_target_changes(pgdata, facts, restore,
                                          workers=min(4, os.cpu_count() or 1),
                                          progress=timer.progress,
                                          use_summaries=options.use_wal_summaries == "auto")
        with timer("plan"):
            listed = survey.result()
            plan, identical = _plan(listed, changes.blocks, facts, keep_files, source, pgdata,
                                    result)
    except BaseException:
        survey.wait(5)              # a request in flight, before the connection closes
        raise
    if options.fallback == "clone" and options.clone_when != "impossible":
        clone_bytes = sum(e.size for p, e in listed.source_files.items()
                          if e.kind == FILE and not is_excluded(p))
        path, reason = choose_path(True, None, plan.fetch_bytes, changes.wal_bytes, clone_bytes,
                                   options.clone_when)
        if path == PATH_CLONE:
            raise _CloneIsCheaper(reason)
    summary = plan.summary()
    result.update({
        "changed": True,
        "files": summary["files"],
        "blocks_copied": summary["blocks_to_copy"],
        "bytes_to_fetch": summary["bytes_to_fetch"],
        "wal_bytes_scanned": changes.wal_bytes,
        "wal_records_scanned": changes.records,
        "wal_scan_processes": changes.processes,
        "changed_blocks": len(changes.blocks),
        "changed_blocks_from": changes_source(changes),
        "discarded": discarded_report(changes, source),
        "largest": plan.largest(),
        "files_identical": identical,
        "fetch_connections": source.parallel,
    })
    target.preflight(plan.actions)
    if options.check_mode:
        result["bytes_fetched"] = 0
        return
    timer.limit.check("begin changing the target")
    check_not_running(pgdata)       # a service manager may have started it meanwhile
    journal = Journal(pgdata, sync=options.sync)
    state = journal_state(facts)
    if reservation is not None:
        state["wal_slot"] = reservation.journal_entry()
    journal.begin(state, changes.blocks, target.dir_mode)
    with timer("copy", summary["bytes_to_fetch"]):
        stats = execute_plan(plan, source, target, timer.progress)
        _install_restored_wal(restore, facts.keep_wal, target)
        _sanitize_copied_auto_conf(plan, pgdata, target)
    result["bytes_fetched"] = stats.bytes_fetched
    with timer("finish"):
        finish(options, pgdata, target, source, facts, journal, result,
               standby_slot=_standby_slot(reservation))


def _plan(listed, blocks, facts, keep_files, source, pgdata, result):
    """The plan from the survey (plan/survey.py) and the changed blocks; (plan, files the
    target already has, so not copied)."""
    plan = build_plan(listed.source_files, listed.target_files, blocks,
                      facts.target.fmt.tablespace_dir, facts.keep_wal, keep_files,
                      facts.wal_copy_rule(listed.source_wal_end))
    plan, identical, _spared = drop_identical_copies(plan, source, pgdata, _warner(result),
                                                     listed)
    return plan, identical


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
        check_not_running(pgdata)   # the new pg_control is in place: it could have started
        journal.complete()          # only the clean-up was left
        result["resumed_from"] = "finish"
        if reservation is not None and reservation.keep:
            _reserve_wal(reservation, options, result)   # the standby's slot: still there
        raised = raise_settings(options, pgdata, [target_facts(pgdata)], result)
        if options.write_recovery_conf:
            standby_configuration(options, pgdata, target, control, result, raised,
                                  _standby_slot(reservation))
        result["duration_s"] = timer.durations
        return result
    target.sync_whole_tree = True   # what the interrupted run wrote may not be on disk
    timer.limit.phase = "facts"
    source = _open_source(options, timer.limit)
    _report_tls(source, result)
    try:
        with timer("facts"):
            facts = facts_from_journal(state, target_original, source)
            check_source(source, facts.source)
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
            keep_files = tuple(options.keep_files)
            plan, identical = _plan(take_survey(source, pgdata, facts, keep_files), blocks,
                                    facts, keep_files, source, pgdata, result)
        summary = plan.summary()
        result.update(files=summary["files"], blocks_copied=summary["blocks_to_copy"],
                      bytes_to_fetch=summary["bytes_to_fetch"], changed_blocks=len(blocks),
                      largest=plan.largest(), wal_bytes_scanned=0,
                      wal_scan_processes=0)
        target.preflight(plan.actions)
        if options.check_mode:
            result["bytes_fetched"] = 0
            return result
        with timer("copy", summary["bytes_to_fetch"]):
            stats = execute_plan(plan, source, target, timer.progress)
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


def _open_source(options, limit):
    return open_source(options.source_server, options.source_pgdata, options.parallel,
                       connect_timeout=options.connect_timeout,
                       source_timeout=options.source_timeout, time_limit=limit)


def _report_tls(source, result):
    tls = source.tls()
    if tls is not None:
        result["source_tls"] = tls


def _warner(result):
    """Warnings for the result (Ansible shows them); the run goes on."""
    return lambda text: result.setdefault("warnings", []).append(text)


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
