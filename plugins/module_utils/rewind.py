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
from dataclasses import dataclass

from .plan.assessment import PATH_CLONE, PATH_REWIND, PathChoice, clone_instead, replay_wal, \
    replay_wal_check, run_path
from .apply.clone import clone_in_progress, lock_directory, resume_clone, run_clone
from .pg.controlfile import parse_control_file
from .pg.datadir import FILE, is_excluded
from .wal.discarded import discarded_report
from .errors import RefusedError, RewindError
from .apply.context import Run
from .apply.execute import complete_replay_wal, execute_plan, install_restored_wal, \
    sanitize_copied_auto_conf
from .plan.identical import drop_identical_copies
from .plan.changes import diverged_scan_ahead, scan_target_changes
from .plan.facts import ScanStart, check_direction, facts_from_journal, gather_facts, \
    journal_state, target_facts
from .apply.finish import finish, node_configuration
from .plan.filemap import Plan, build_plan
from .standby.hot_standby import raise_settings
from .target.journal import Journal
from .options import RewindOptions
from .plan.preconditions import check_source, cleanly_stopped_target, config_file_for, \
    restore_command_for, stopped_or_dry_run, validate_source
from .runtime.ratelimit import parse_rate
from .apply.session import open_run_source, report_rate, reserve_wal, unreserve_wal, warner
from .runtime import faults
from .runtime.progress import PhaseTimer, Progress, default_path
from .target.runlock import RunLock
from .runtime.scratch import ScratchDirectory, sweep_dead, write_private_file
from .plan.survey import SurveyInBackground, take_survey
from .target.commands import RestoreCommand
from .target.directory import TargetDirectory, check_not_running
from .runtime.timeouts import TimeLimit
from .wal.scan import TargetChanges
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
        try:        # the rewind is done: a report that cannot be written is only a warning
            write_private_file(options.discarded_file,
                               json.dumps(result["discarded"], indent=1, sort_keys=True).encode())
            result["discarded_file"] = options.discarded_file
        except OSError as exc:
            warner(result)("discarded_file: %s could not be written (%s); the report is in "
                           "this result's discarded." % (options.discarded_file, exc.strerror))
    if progress.path:
        result["progress_file"] = progress.path
    if progress.moved:
        warner(result)("progress file: %s; it is written to %s instead."
                       % (progress.moved, progress.path or "no file"))
    result["progress_overhead"] = progress.overhead()
    return result


def _run(options: RewindOptions, progress: Progress) -> dict:
    _check_parameters(options)
    pgdata = os.path.abspath(options.target_pgdata)
    timer = PhaseTimer(progress, TimeLimit(options.timeout))
    interrupted_clone = clone_in_progress(pgdata)
    if interrupted_clone:       # (mid-swap the data directory itself may be missing)
        return _resume_clone(Run(options, pgdata, timer, {"changed": True}), interrupted_clone)
    if not os.path.isdir(pgdata):
        raise RefusedError("target_pgdata %s is not a directory." % pgdata,
                           code="not_a_data_directory")
    run = Run(options, pgdata, timer, {"changed": False},
              TargetDirectory(pgdata, sync=options.sync))
    run.target.check_writer()
    running = stopped_or_dry_run(pgdata, options, run.result)   # (check mode: may run)
    sweep_dead()                # restored WAL left by this user's killed runs
    journal = Journal(pgdata, sync=options.sync)
    if journal.exists():
        if journal.begun():
            return _resume(run, journal)
        if not options.check_mode:
            journal.discard()       # interrupted before it changed anything: start afresh
    scratch = ScratchDirectory()        # WAL restored from the archive goes here
    found = None
    try:
        found = _facts(run, scratch.path, running)
        if found is not None:       # None: check mode with an unclean target stops here
            _rejoin(run, journal, *found)
    finally:
        if found is not None and found[2] is not None:
            found[2].drop_scan_ahead()      # not taken by a scan (a refusal, a clone)
        if run.source is not None:
            run.source.close()
            report_rate(run)
        scratch.remove()
    run.result["duration_s"] = timer.durations
    return run.result


def _check_parameters(options) -> None:
    parse_rate(options.max_rate)        # refused here, before anything is read
    if options.discarded_file and not options.check_mode:
        where = os.path.dirname(os.path.abspath(options.discarded_file))
        if not (os.path.isdir(where) and os.access(where, os.W_OK | os.X_OK)):
            raise RefusedError("discarded_file: %s is not a directory this user may write; "
                               "give a path the data directory's owner can create."
                               % where, code="bad_parameters")
    if bool(options.source_server) == bool(options.source_pgdata):
        raise RefusedError("give exactly one of source_server or source_pgdata.",
                           code="bad_parameters")
    if options.write_recovery_conf and not (options.primary_conninfo or options.source_server):
        raise RefusedError("write_recovery_conf needs primary_conninfo when the source is a "
                           "local data directory.", code="bad_parameters")


def _facts(run, restore_dir, running=None):
    """(target control, restore command, facts, refusal): facts None when finding them
    met a refusal (`refusal`); None when check mode stops at an unclean target."""
    options, pgdata = run.options, run.pgdata
    with run.timer("facts"):
        control = target_facts(pgdata)
        open_run_source(run)
        validate_source(run.source, control, options)   # before crash recovery changes it
        config_file_for(options, control, pgdata, run.result)
        run.reservation = wal_reservation(options, time_limit=run.timer.limit)
        with released_on_failure(run.reservation, lambda: False):
            reserve_wal(run)       # the first thing on the source: its WAL from now on stays
            faults.moment("wal reserved")
            control = cleanly_stopped_target(pgdata, options, run.result, control,
                                             running is not None)
            if control is None:
                return None
            restore = restore_command_for(options, control, pgdata, restore_dir)
            facts = refusal = None
            try:
                facts = gather_facts(pgdata, control, run.source, restore, running or 0,
                                     _scan_ahead(run, restore))
            except RewindError as exc:
                refusal = exc
            if facts is not None:
                try:
                    check_source(run.source, facts.source)
                    check_direction(facts, options.allow_older_source)
                except BaseException:
                    facts.drop_scan_ahead()
                    raise
        if run.reservation is not None and facts is not None and \
                not (facts.rewind_required or run.reservation.keep):
            unreserve_wal(run)     # nothing copied, and no slot for the standby
    if facts is not None and facts.checkpoint_walk_s:   # the common WAL, walked back
        run.timer.split("facts", "checkpoint_walk", facts.checkpoint_walk_s)
    return control, restore, facts, refusal


def _scan_workers() -> int:
    return min(4, os.cpu_count() or 1)


def _scan_ahead(run, restore):
    """How gather_facts may start the diverged WAL's scan before the last common
    checkpoint is found (None: this run will not scan, as a clone chosen up front)."""
    if run_path(True, run.options.fallback, run.options.clone_when).path != PATH_REWIND:
        return None
    return lambda facts: diverged_scan_ahead(run.pgdata, facts, restore, _scan_workers())


def _rejoin(run, journal, control, restore, facts, refusal) -> None:
    """Choose the path (a value), then act on it: clone, rewind, or only configure. The
    slot reserved with the facts is dropped when this fails before the rewind is done."""
    with released_on_failure(run.reservation, lambda: _complete(journal)):
        raised = None
        if facts is not None:
            run.result.update(facts.summary())
            run.result["target"] = control.summary()
            run.result["source"] = facts.source.summary()
            # The standby replays the source's WAL (and, when not rewound, starts from its
            # own pg_control): checked now, while a refusal changes nothing.
            raised = raise_settings(run.options, run.pgdata, [facts.source] + (
                [] if facts.rewind_required else [control]), run.result)
        choice, planned = _choose_path(run, facts, refusal, restore)
        if choice.path == PATH_CLONE:
            run_clone(run, choice.reason)
        elif choice.path == PATH_REWIND:
            _report_plan(run, planned)
            _carry_out(run, facts, planned.plan, journal, planned.changes.blocks, planned.replay,
                       restore)
        elif run.options.write_recovery_conf or raised:
            if not run.options.check_mode:
                check_not_running(run.pgdata)
            node_configuration(run, control, raised)


def _choose_path(run, facts, refusal, restore) -> tuple:
    """The planning step: (PathChoice, the rewind's plan when the path is rewind). A
    refusal that rules out only the rewind is a clone when the operator allows one;
    any other refusal stands (raised)."""
    fallback, clone_when = run.options.fallback, run.options.clone_when
    if facts is None:
        return _clone_or_refuse(refusal, fallback), None
    choice = run_path(facts.rewind_required, fallback, clone_when)  # always: before the scan
    if choice.path != PATH_REWIND:
        return choice, None
    try:
        planned = _plan(run, facts, restore)
    except RewindError as exc:
        return _clone_or_refuse(exc, fallback), None
    costs = (planned.plan.fetch_bytes, planned.changes.wal_bytes, planned.clone_bytes)
    return run_path(True, fallback, clone_when, costs), planned


def _clone_or_refuse(refusal, fallback) -> PathChoice:
    choice = clone_instead(refusal.code, str(refusal), fallback)
    if choice is None:
        raise refusal
    return choice


def _resume_clone(run, where):
    TargetDirectory(where, sync=run.options.sync).check_writer()
    check_not_running(where)
    open_run_source(run)
    run.reservation = wal_reservation(run.options, time_limit=run.timer.limit)
    try:
        with released_on_failure(run.reservation, lambda: False):
            reserve_wal(run)
            resume_clone(run, where)
    finally:
        run.source.close()
    run.result["duration_s"] = run.timer.durations
    return run.result


def _complete(journal) -> bool:
    """The rewound pg_control is in place (the journal's last step may be left)."""
    try:
        return journal.exists() and journal.finished()
    except (OSError, ValueError):
        return False


@dataclass(frozen=True)
class _Planned:
    """A rewind's plan, with what it was made from and what a clone would copy instead."""
    plan: Plan
    changes: TargetChanges      # what the WAL scan found
    scan_start: ScanStart       # where it started reading, and why
    identical: int              # files the target already has, so not copied
    clone_bytes: int
    replay: tuple               # (WAL segments replay needs, from, to): plan/walneeds.py


def _plan(run, facts, restore) -> _Planned:
    """The WAL scan, the survey of both sides' files beside it, and the plan."""
    keep_files = tuple(run.options.keep_files)
    survey = SurveyInBackground(run.source, run.pgdata, facts, keep_files)  # while the scan runs
    try:
        begin = facts.scan_start()
        with run.timer("wal_scan", facts.target_wal_end - begin.lsn,
                       common_skipped=begin.lsn - facts.last_common_checkpoint.lsn):
            changes = scan_target_changes(run.pgdata, facts, restore,
                                          workers=_scan_workers(),
                                          progress=run.timer.progress,
                                          use_summaries=run.options.use_wal_summaries == "auto")
        with run.timer("plan"):
            listed = survey.result()
            plan, identical = _build_plan(run, listed, changes.blocks, facts)
            replay = replay_wal_check(facts, listed.source_wal_end, listed.source_files,
                                      plan.actions, listed.target_files, restore)
    except BaseException:
        survey.wait(5)              # a request in flight, before the connection closes
        raise
    clone_bytes = sum(e.size for p, e in listed.source_files.items()
                      if e.kind == FILE and not is_excluded(p))
    return _Planned(plan, changes, begin, identical, clone_bytes, replay)


def _report_plan(run, planned) -> None:
    plan, changes, summary = planned.plan, planned.changes, planned.plan.summary()
    run.result.update({
        "changed": True,
        "files": summary["files"],
        "blocks_copied": summary["blocks_to_copy"],
        "bytes_to_fetch": summary["bytes_to_fetch"],
        "wal_bytes_scanned": changes.wal_bytes,
        "wal_records_scanned": changes.records,
        "wal_bytes_common_skipped": changes.common_skipped,
        "wal_scan_start": planned.scan_start.as_dict(),
        "wal_scan_processes": changes.processes,
        "wal_scan_ahead": changes.scanned_ahead,
        "changed_blocks": len(changes.blocks),
        "changed_blocks_from": changes_source(changes),
        "discarded": discarded_report(changes, run.source),
        "largest": plan.largest(),
        "files_identical": planned.identical,
        "fetch_connections": run.source.parallel,
    })


def _carry_out(run, facts, plan, journal, blocks, replay, restore=None) -> None:
    """The tail of a fresh rewind and a resumed one: preflight, stop in check mode,
    begin the journal (a fresh rewind; a resumed one's has begun), copy, check that the
    WAL replay needs is in place, finish."""
    run.target.preflight(plan.actions)
    if run.options.check_mode:
        run.result["bytes_fetched"] = 0
        return
    if not journal.begun():
        run.timer.limit.check("begin changing the target")
        check_not_running(run.pgdata)   # a service manager may have started it meanwhile
        state = journal_state(facts)
        if run.reservation is not None:
            state["wal_slot"] = run.reservation.journal_entry()
        journal.begin(state, blocks, run.target.dir_mode)
    with run.timer("copy", plan.fetch_bytes):
        stats = execute_plan(plan, run.source, run.target, run.timer.progress)
        install_restored_wal(restore, facts.keep_wal, run.target)
        sanitize_copied_auto_conf(plan, run.pgdata, run.target)
        fetched = complete_replay_wal(replay, run.source, run.target, restore,
                                      facts.target.xlog_seg_size)
    if fetched:
        run.result["wal_fetched_again"] = fetched
    run.result["bytes_fetched"] = stats.bytes_fetched
    run.result["bytes_written"] = stats.bytes_written
    with run.timer("finish"):
        finish(run, facts, journal)


def _build_plan(run, listed, blocks, facts):
    """The plan from the survey (plan/survey.py) and the changed blocks; (plan, files the
    target already has, so not copied)."""
    plan = build_plan(listed.source_files, listed.target_files, blocks,
                      facts.target.fmt.tablespace_dir, facts.keep_wal,
                      tuple(run.options.keep_files), facts.wal_copy_rule(listed.source_wal_end))
    plan, identical, _spared = drop_identical_copies(plan, run.source, run.pgdata,
                                                     warner(run.result), listed)
    return plan, identical


def _resume(run, journal):
    """Complete a rewind that was interrupted after it began changing the target, from
    its journal (the target's own WAL after the fork is no longer needed)."""
    options, result = run.options, run.result
    result.update(changed=True, resumed=True, rewind_required=True, reason="diverged")
    control = parse_control_file(journal.original_control(),
                                 "the journal's copy of the target pg_control")
    state = journal.load()
    run.reservation = wal_reservation(options, state.get("wal_slot"), run.timer.limit)
    if journal.finished():
        if options.check_mode:
            return result
        check_not_running(run.pgdata)   # the new pg_control is in place: it could have started
        journal.complete()          # only the clean-up was left
        result["resumed_from"] = "finish"
        if run.standby_slot:
            reserve_wal(run)       # the standby's slot: still there
        raised = raise_settings(options, run.pgdata, [target_facts(run.pgdata)], result)
        node_configuration(run, control, raised)
        result["duration_s"] = run.timer.durations
        return result
    run.target.sync_whole_tree = True   # what the interrupted run wrote may not be on disk
    run.timer.limit.phase = "facts"
    open_run_source(run)
    scratch = ScratchDirectory()    # WAL the copy missed, restored from the archive
    try:
        with run.timer("facts"):
            facts = facts_from_journal(state, control, run.source)
            check_source(run.source, facts.source)
        result.update(facts.summary())
        result["target"] = control.summary()
        result["source"] = facts.source.summary()
        result["resumed_from"] = "copy"
        reserve_wal(run)
        entry = run.reservation.journal_entry() if run.reservation is not None else None
        if entry is not None and state.get("wal_slot") != entry and not options.check_mode:
            journal.update(wal_slot=entry)
        blocks = journal.load_blocks()
        with run.timer("plan"):
            listed = take_survey(run.source, run.pgdata, facts, tuple(options.keep_files))
            plan, _identical = _build_plan(run, listed, blocks, facts)
        summary = plan.summary()
        result.update(files=summary["files"], blocks_copied=summary["blocks_to_copy"],
                      bytes_to_fetch=summary["bytes_to_fetch"], changed_blocks=len(blocks),
                      largest=plan.largest(), wal_bytes_scanned=0,
                      wal_scan_processes=0, wal_scan_ahead=False)
        restore = RestoreCommand(options.restore_command, control.xlog_seg_size,
                                 scratch.path) if options.restore_command else None
        _carry_out(run, facts, plan, journal, blocks,
                   replay_wal(facts, listed.source_wal_end, listed.source_files), restore)
    except BaseException as exc:
        release_after_failed_run(run.reservation, lambda: _complete(journal), exc)
        raise
    finally:
        run.source.close()
        scratch.remove()
        report_rate(run)
    if not options.check_mode:      # (a dry run of a resumption reports no durations)
        result["duration_s"] = run.timer.durations
    return result
