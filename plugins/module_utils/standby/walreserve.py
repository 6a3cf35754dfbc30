# -*- coding: utf-8 -*-
# Copyright: pgops.rewind developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Keeping the new primary's WAL until the rewound node streams.

A busy new primary with little WAL retention (wal_keep_size = 0, a small
max_wal_size) removes, at each checkpoint, the segments the rewound node will ask
for when it starts: "requested WAL segment ... has already been removed". As
pg_basebackup does, the rewind reserves that WAL with a physical replication slot,
created on the source before its files are listed (so before the first byte is
copied). docs/design.md explains why no WAL falls between the copy and the slot.

The slot then either stays for the standby to stream through (keep) or is dropped
by whoever sees the node stream (the role). A run that fails before the rewind is
complete drops the slot it (or the run it resumes) created: an unused slot would
fill the new primary's disk.
"""

from __future__ import annotations

import re
import socket
import time
from contextlib import contextmanager
from typing import Optional

from ..errors import RefusedError, RewindError, SourceError
from ..runtime import faults
from ..runtime.timeouts import TimeLimit
from ..source.connection import DEFAULT_CONNECT_TIMEOUT, DEFAULT_SOURCE_TIMEOUT, psycopg2
from .slots import (check_slot_name, create_physical_slot, drop_slot, require_slot_privilege,
                    slot_connector, slot_state)

DEFAULT_PREFIX = "pgops_rewind_"
ACTIVE_WAIT_S = 10.0      # a walsender may hold the slot a moment after its standby stopped


def default_slot_name(host: Optional[str] = None) -> str:
    """pgops_rewind_<this host>, as a valid slot name."""
    host = socket.gethostname() if host is None else host
    return (DEFAULT_PREFIX + re.sub(r"[^a-z0-9_]", "_", host.lower()))[:63]


class WalReservation:
    """The physical slot a rewind keeps on its source."""

    # A run that failed (perhaps because the source hangs) does not wait long to drop it.
    QUICK_SECONDS = 5

    def __init__(self, conninfo: str, name: str, keep: bool, owned: bool = False,
                 connect_timeout: int = DEFAULT_CONNECT_TIMEOUT,
                 request_timeout: int = DEFAULT_SOURCE_TIMEOUT,
                 time_limit: Optional[TimeLimit] = None):
        check_slot_name(name)
        self.conninfo = conninfo
        self.connect_timeout = connect_timeout or DEFAULT_CONNECT_TIMEOUT
        self.request_timeout = request_timeout      # the run's source_timeout (0: unbounded)
        self.time_limit = time_limit
        self.name = name
        self.keep = keep
        self.owned = owned        # created by this rewind (this run or one it resumes)
        self.created = False      # by this run
        self.exists = False
        self.restart_lsn = None

    def _session(self, what, work, quick: bool = False):
        """work(cursor) in one session on the source, every request of it bounded (the
        connection factory's watchdog): by source_timeout and the run's time limit, or,
        after a failure (quick), by QUICK_SECONDS."""
        if quick:
            server = slot_connector(self.conninfo, self.connect_timeout, self.QUICK_SECONDS,
                                    peer="the source", timeout_option="after a failed run",
                                    max_connect_seconds=self.QUICK_SECONDS)
        else:
            server = slot_connector(self.conninfo, self.connect_timeout, self.request_timeout,
                                    self.time_limit, peer="the source")
        with server.session() as session:
            faults.moment("slot " + what)
            try:
                with session.cursor("%s replication slot %s" % (what, self.name)) as cur:
                    return work(cur)
            except psycopg2.Error as exc:
                raise SourceError("could not %s replication slot %s on the source: %s"
                                  % (what, self.name, server.scrub(exc)),
                                  hint="Check the new primary's log and max_replication_slots; "
                                       "or set reserve_wal: false.", code="slot_failed") from None

    def _usable_state(self, cur):
        """The slot as it is now (None: absent); refuses a name another user holds."""
        state = slot_state(cur, self.name)
        deadline = time.monotonic() + ACTIVE_WAIT_S
        while state is not None and state.active and time.monotonic() < deadline:
            time.sleep(0.5)
            state = slot_state(cur, self.name)
        if state is None:
            return None
        if state.slot_type != "physical" or state.active:
            raise RefusedError(
                "replication slot %s already exists on the source and is %s." % (
                    self.name, "a %s slot" % state.slot_type if state.slot_type != "physical"
                    else "in use by another standby"),
                hint="Choose another slot_name (pg_rewind_primary_slot_name in the role), or "
                     "drop that slot if nothing needs it.", code="slot_in_use")
        if not state.reserves_wal:
            raise RefusedError(
                "replication slot %s exists on the source but reserves no WAL (%s)."
                % (self.name, "its WAL was removed" if state.wal_status == "lost"
                   else "it was created without reserving any"),
                hint="Drop it (SELECT pg_drop_replication_slot('%s')) or choose another "
                     "slot_name, and run again." % self.name, code="slot_in_use")
        return state

    def check(self) -> None:
        """Read-only: the privilege and the name (check mode, and before anything else)."""
        def work(cur):
            require_slot_privilege(cur)
            state = self._usable_state(cur)
            self.exists = state is not None
            self.restart_lsn = state.restart_lsn if state else None
        self._session("inspect", work)

    def reserve(self) -> None:
        """Create the slot, or reuse an idle one of that name that still reserves WAL."""
        def work(cur):
            require_slot_privilege(cur)
            state = self._usable_state(cur)
            if state is None:
                self.restart_lsn = create_physical_slot(cur, self.name)
                self.created = self.owned = True
            else:
                self.restart_lsn = state.restart_lsn
            self.exists = True
        self._session("create", work)

    def release(self, quick: bool = False) -> None:
        def work(cur):
            if slot_state(cur, self.name) is not None:
                drop_slot(cur, self.name)
            self.exists = False
        self._session("drop", work, quick)

    def release_after_failure(self) -> Optional[str]:
        """Drop the slot if this rewind created it; the reason when that failed too."""
        if not self.owned:
            return None
        try:
            self.release(quick=True)
        except RewindError as exc:
            return exc.message
        return None

    def journal_entry(self) -> dict:
        return {"name": self.name, "owned": self.owned}

    def summary(self, check_mode: bool = False) -> dict:
        return {
            "name": self.name,
            "created": self.created or (check_mode and not self.exists),
            "restart_lsn": self.restart_lsn,
            "keep": self.keep,
            "drop_after_streaming": not self.keep,
        }


def wal_reservation(options, journal_entry: Optional[dict] = None,
                    time_limit: Optional[TimeLimit] = None) -> Optional[WalReservation]:
    """The reservation a run makes: the one its journal records, else one per the options
    (none for a local, stopped source, whose WAL nothing removes). Its sessions are
    bounded as the source's are: source_timeout per request, the run's time_limit."""
    if not options.source_server:
        return None
    keep = options.write_recovery_conf if options.keep_slot is None else options.keep_slot
    bounds = dict(connect_timeout=options.connect_timeout,
                  request_timeout=options.source_timeout, time_limit=time_limit)
    if journal_entry:
        return WalReservation(options.source_server, journal_entry["name"], keep,
                              owned=journal_entry.get("owned", False), **bounds)
    if not options.reserve_wal:
        return None
    return WalReservation(options.source_server, options.slot_name or default_slot_name(), keep,
                          **bounds)


def release_after_failed_run(reservation: Optional[WalReservation], completed, exc) -> None:
    """Drop the slot this rewind created when the run failed before `completed()` (the
    rewound pg_control in place: from then on the slot belongs to the rewound node).
    When the drop fails too, the error says so."""
    if reservation is None or completed():
        return
    problem = reservation.release_after_failure()
    if problem and isinstance(exc, RewindError):
        exc.message += (" The replication slot %s this rewind created on the source could not "
                        "be dropped (%s): drop it (SELECT pg_drop_replication_slot('%s')) "
                        "unless you run the rewind again." % (reservation.name, problem,
                                                              reservation.name))
        exc.args = (exc.message,)


@contextmanager
def released_on_failure(reservation: Optional[WalReservation], completed):
    """release_after_failed_run() around a block."""
    try:
        yield
    except BaseException as exc:
        release_after_failed_run(reservation, completed, exc)
        raise
