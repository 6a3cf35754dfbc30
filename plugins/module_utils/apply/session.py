# -*- coding: utf-8 -*-
# Copyright: pgops.rewind developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The run's side of its session with the new primary: opening the source for a run,
reserving and releasing its WAL, and what the result says about them.

Every path of the orchestrator (a fresh rewind, a resumed one, a resumed clone) opens
the source and reserves its WAL the same way; these steps take the run context (`Run`)
and fill its result, so the orchestrator reads as the job.
"""

from __future__ import annotations

from ..runtime.ratelimit import parse_rate
from ..source.factory import open_source


def open_run_source(run) -> None:
    """run.source: the new primary (a running server or a data directory), with the
    run's time limit, connections and rate; the TLS it was reached with is reported."""
    options = run.options
    run.source = open_source(options.source_server, options.source_pgdata, options.parallel,
                             connect_timeout=options.connect_timeout,
                             source_timeout=options.source_timeout, time_limit=run.timer.limit,
                             max_rate=parse_rate(options.max_rate))
    tls = run.source.tls()
    if tls is not None:
        run.result["source_tls"] = tls


def reserve_wal(run) -> None:
    """Before anything is listed or copied, the slot that keeps the source's WAL (in check
    mode only the privilege and the name are checked)."""
    reservation, result = run.reservation, run.result
    if reservation is None:
        return
    if run.options.check_mode:
        reservation.check()
    else:
        reservation.reserve()
        result["changed"] = result["changed"] or reservation.created
    result["slot"] = reservation.summary(run.options.check_mode)


def unreserve_wal(run) -> None:
    """Drop the slot this run reserved when the facts show nothing needs it."""
    reservation, run.reservation = run.reservation, None
    run.result.pop("slot", None)
    if reservation.created and not run.options.check_mode:
        reservation.release()
        run.result["changed"] = bool(run.result.get("crash_recovery"))


def report_rate(run) -> None:
    """What max_rate made the run wait (nothing without a rate)."""
    report = run.source.rate_report()
    if report is not None:
        run.result["rate_limit"] = report


def warner(result):
    """Warnings for the result (Ansible shows them); the run goes on."""
    return lambda text: result.setdefault("warnings", []).append(text)
