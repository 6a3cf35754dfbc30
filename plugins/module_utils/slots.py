# -*- coding: utf-8 -*-
# Copyright: pgops.rewind developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Physical replication slots on the new primary, for a rewound standby to use."""

from __future__ import annotations

import re

from .errors import RefusedError, SourceError
from .libpq_source import HAS_PSYCOPG2, psycopg2, secrets_of

_SLOT_NAME = re.compile(r"^[a-z0-9_]{1,63}$")


def ensure_physical_slot(conninfo: str, name: str, present: bool = True,
                         check_mode: bool = False) -> dict:
    """Create (or drop) the physical slot `name`; changed only when it did."""
    if not _SLOT_NAME.match(name or ""):
        raise RefusedError("%r is not a valid replication slot name (lower-case letters, digits "
                           "and underscores, at most 63)." % name, code="bad_parameters")
    if not HAS_PSYCOPG2:
        raise SourceError("psycopg2 is needed to manage replication slots.",
                          code="missing_psycopg2")
    try:
        conn = psycopg2.connect(conninfo, connect_timeout=30,
                                fallback_application_name="pgops_rewind")
    except psycopg2.Error as exc:
        text = str(exc).strip()
        for secret in secrets_of(conninfo):
            text = text.replace(secret, "********")
        raise SourceError("cannot connect to the new primary: %s" % text,
                          code="source_unreachable") from None
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT slot_type, active FROM pg_catalog.pg_replication_slots "
                        "WHERE slot_name = %s", (name,))
            row = cur.fetchone()
            if row and row[0] != "physical":
                raise RefusedError("slot %s exists but is a %s slot." % (name, row[0]),
                                   code="bad_parameters")
            changed = bool(row) != present
            if changed and not check_mode:
                if present:
                    cur.execute("SELECT pg_catalog.pg_create_physical_replication_slot(%s, true)",
                                (name,))
                else:
                    cur.execute("SELECT pg_catalog.pg_drop_replication_slot(%s)", (name,))
            return {"changed": changed, "slot_name": name,
                    "active": bool(row and row[1]) if present else False}
    except psycopg2.Error as exc:
        raise SourceError("could not manage slot %s on the new primary: %s"
                          % (name, str(exc).strip()), code="source_query") from None
    finally:
        conn.close()
