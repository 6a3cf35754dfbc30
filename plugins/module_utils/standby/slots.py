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
from ..source.connection import (DEFAULT_CONNECT_TIMEOUT, added_settings, check_tls_settings,
                                 connect_failure_code)
from ..source.libpq import HAS_PSYCOPG2, psycopg2, secrets_of

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


def connect(conninfo: str, connect_timeout: int = DEFAULT_CONNECT_TIMEOUT,
            statement_timeout: int = 0, time_left: Optional[float] = None):
    """An autocommit session on the server the slot lives on, connected as the source is
    (source/connection.py: a connect_timeout the connection string names wins, capped at
    time_left; keepalives; weak TLS settings refused; the failure's error code);
    statement_timeout in seconds (0: the server's). Errors carry no secret."""
    if not HAS_PSYCOPG2:
        raise SourceError("psycopg2 is needed to manage replication slots.",
                          code="missing_psycopg2")
    try:
        given = psycopg2.extensions.parse_dsn(conninfo)
    except psycopg2.Error:
        given = {}              # connecting says what is wrong with it
    check_tls_settings(given)
    params = added_settings(given, connect_timeout, time_left)
    if statement_timeout:
        params["options"] = "-c statement_timeout=%ds" % statement_timeout
    try:
        conn = psycopg2.connect(conninfo, **params)
    except psycopg2.Error as exc:
        text = scrub(exc, conninfo)
        raise SourceError("cannot connect to the new primary: %s" % text,
                          code=connect_failure_code(text)) from None
    conn.autocommit = True
    return conn


def scrub(exc, conninfo: str) -> str:
    text = str(getattr(exc, "pgerror", None) or exc).strip()
    for secret in secrets_of(conninfo):
        text = text.replace(secret, "********")
    return text


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
    """Create (or drop) the physical slot `name`; changed only when it did."""
    check_slot_name(name)
    conn = connect(conninfo, connect_timeout, statement_timeout)
    try:
        with conn.cursor() as cur:
            require_slot_privilege(cur)
            state = slot_state(cur, name)
            if state and state.slot_type != "physical":
                raise RefusedError("slot %s exists but is a %s slot." % (name, state.slot_type),
                                   code="bad_parameters")
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
                          % (name, scrub(exc, conninfo)), code="source_query") from None
    finally:
        conn.close()
