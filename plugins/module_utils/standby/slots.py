# -*- coding: utf-8 -*-
# Copyright: pgops.rewind developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Physical replication slots on the new primary, for a rewound standby to use.

The SQL lives here once: the pg_physical_slot module and the rewind's WAL
reservation (standby/walreserve.py) both go through these functions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

from ..errors import RefusedError, SourceError
from ..runtime import faults
from ..runtime.timeouts import TimeLimit
from ..source.connection import DEFAULT_CONNECT_TIMEOUT, ServerConnector, psycopg2

_SLOT_NAME = re.compile(r"^[a-z0-9_]{1,63}$")
REPLICATION_HINT = ("Give the source role the REPLICATION attribute (ALTER ROLE ... REPLICATION) "
                    "or use a superuser; or set reserve_wal: false (pg_rewind_reserve_wal: false "
                    "in the role) to rewind without reserving the new primary's WAL.")


@dataclass(frozen=True)
class SlotState:
    """A slot as pg_replication_slots shows it."""

    name: str
    slot_type: str
    active: bool
    restart_lsn: Optional[str]      # None: it reserves no WAL (never did, or invalidated)
    wal_status: Optional[str]       # 13+: reserved / extended / unreserved / lost

    @property
    def reserves_wal(self) -> bool:
        return self.restart_lsn is not None and self.wal_status != "lost"


def check_slot_name(name: str) -> None:
    if not _SLOT_NAME.match(name or ""):
        raise RefusedError("%r is not a valid replication slot name (lower-case letters, digits "
                           "and underscores, at most 63)." % name, code="bad_parameters")


def slot_connector(conninfo: str, connect_timeout: int = DEFAULT_CONNECT_TIMEOUT,
                   request_timeout: int = 0, time_limit: Optional[TimeLimit] = None,
                   peer: str = "the new primary", **bounds) -> ServerConnector:
    """Sessions on the server the slot lives on, opened as the source's are (the factory
    in source/connection.py: keepalives, connect_timeout, weak TLS refused, each request
    bounded by request_timeout -- its statement_timeout -- and the watchdog, errors
    without secrets)."""
    return ServerConnector(conninfo, connect_timeout, request_timeout, time_limit, peer,
                           **bounds)


def may_use_slots(cur) -> bool:
    """Whether the session's role may create and drop slots (superuser or REPLICATION)."""
    cur.execute("SELECT rolsuper OR rolreplication FROM pg_catalog.pg_roles "
                "WHERE rolname = current_user")
    row = cur.fetchone()
    return bool(row and row[0])


def require_slot_privilege(cur) -> None:
    if not may_use_slots(cur):
        cur.execute("SELECT current_user")
        raise RefusedError("the source role %s lacks the REPLICATION privilege, which creating "
                           "and dropping replication slots needs." % cur.fetchone()[0],
                           hint=REPLICATION_HINT, code="source_no_replication")


def slot_state(cur, name: str) -> Optional[SlotState]:
    """The slot `name`, or None. wal_status (13+) is read through to_jsonb so one query
    serves every major."""
    cur.execute("SELECT slot_type, active, restart_lsn::text, to_jsonb(s) ->> 'wal_status' "
                "FROM pg_catalog.pg_replication_slots AS s WHERE slot_name = %s", (name,))
    row = cur.fetchone()
    return SlotState(name, *row) if row else None


def create_physical_slot(cur, name: str) -> str:
    """Create `name` reserving WAL at once; returns its restart_lsn. The server reserves
    from its last checkpoint's redo point and makes sure that segment still exists."""
    cur.execute("SELECT lsn::text FROM pg_catalog.pg_create_physical_replication_slot(%s, true)",
                (name,))
    return cur.fetchone()[0]


def drop_slot(cur, name: str) -> None:
    cur.execute("SELECT pg_catalog.pg_drop_replication_slot(%s)", (name,))


def ensure_physical_slot(conninfo: str, name: str, present: bool = True,
                         check_mode: bool = False, connect_timeout: int = DEFAULT_CONNECT_TIMEOUT,
                         statement_timeout: int = 0) -> dict:
    """Create (or drop) the physical slot `name`; changed only when it did. Each request
    is bounded by statement_timeout (the module's source_timeout; 0: unbounded)."""
    check_slot_name(name)
    what = "%s replication slot %s" % ("create" if present else "drop", name)
    server = slot_connector(conninfo, connect_timeout, statement_timeout)
    with server.session() as session:
        faults.moment("slot " + ("create" if present else "drop"))
        try:
            with session.cursor(what) as cur:
                require_slot_privilege(cur)
                state = slot_state(cur, name)
                if state and state.slot_type != "physical":
                    raise RefusedError("slot %s exists but is a %s slot."
                                       % (name, state.slot_type), code="bad_parameters")
                changed = bool(state) != present
                if changed and not check_mode:
                    if present:
                        create_physical_slot(cur, name)
                    else:
                        drop_slot(cur, name)
                return {"changed": changed, "slot_name": name,
                        "active": bool(state and state.active) if present else False}
        except psycopg2.Error as exc:
            raise SourceError("could not manage slot %s on the new primary: %s"
                              % (name, server.scrub(exc)), code="source_query") from None
