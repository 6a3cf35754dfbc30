# -*- coding: utf-8 -*-
# Copyright: pgops.rewind developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where the good copy comes from: the new primary, read through a small interface.

`LocalSource` reads a cleanly shut down data directory on this host;
`LibpqSource` reads a running server over an ordinary (non-replication) libpq
connection with pg_ls_dir / pg_stat_file / pg_read_binary_file, which a
non-superuser role can be granted. Everything above this module sees only the
`Source` methods.
"""

from __future__ import annotations

import os
import re
from typing import Optional

from .controlfile import CONTROL_PATH, ControlFile, parse_control_file
from .errors import SourceError

try:
    import psycopg2
    import psycopg2.extensions
    HAS_PSYCOPG2 = True
except ImportError:  # pragma: no cover - depends on the host
    psycopg2 = None
    HAS_PSYCOPG2 = False


class Source:
    """The source cluster, as the engine needs to see it."""

    kind = "abstract"
    is_running = False

    def read_file(self, path: str) -> Optional[bytes]:
        """A whole (small) file relative to the data directory, or None if it is missing."""
        raise NotImplementedError

    def control_file(self) -> ControlFile:
        data = self.read_file(CONTROL_PATH)
        if data is None:
            raise SourceError("the source has no %s: it is not a PostgreSQL data directory."
                              % CONTROL_PATH, code="source_not_pgdata")
        return parse_control_file(data, "source %s" % CONTROL_PATH)

    def current_timeline(self, control: ControlFile) -> int:
        """The timeline the source is on now (may be newer than its pg_control says)."""
        return control.timeline

    def in_recovery(self) -> bool:
        return False

    def full_page_writes(self, control: ControlFile) -> bool:
        return control.full_page_writes

    def close(self) -> None:
        pass


class LocalSource(Source):
    """A data directory on this host whose server is cleanly shut down."""

    kind = "local"

    def __init__(self, pgdata: str):
        self.pgdata = os.path.abspath(pgdata)

    def read_file(self, path):
        try:
            with open(os.path.join(self.pgdata, path), "rb") as handle:
                return handle.read()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise SourceError("cannot read %s in the source data directory: %s"
                              % (path, exc.strerror), code="source_unreadable") from None


_SECRET_KEYS = ("password",)


class LibpqSource(Source):
    """A running server reached with a libpq connection string."""

    kind = "libpq"
    is_running = True

    def __init__(self, conninfo: str, connect_timeout: int = 30):
        if not HAS_PSYCOPG2:
            raise SourceError("the psycopg2 Python package is needed on the target host to "
                              "read the source over libpq.",
                              hint="Install python3-psycopg2 (or pip install psycopg2-binary) "
                                   "on the target host, or use source_pgdata.",
                              code="missing_psycopg2")
        self._secrets = secrets_of(conninfo)
        try:
            params = {"connect_timeout": connect_timeout}
            if "fallback_application_name" not in conninfo:
                params["fallback_application_name"] = "pgops_rewind"
            self.conn = psycopg2.connect(conninfo, **params)
        except psycopg2.Error as exc:
            raise SourceError("cannot connect to the source server: %s" % self._scrub(exc),
                              hint="Check source_server (host, port, user, password) and that "
                                   "the new primary accepts this connection (pg_hba.conf).",
                              code="source_unreachable") from None
        self.conn.autocommit = True
        self.server_version = self.conn.server_version
        self._init_session()

    def _scrub(self, exc) -> str:
        text = str(getattr(exc, "pgerror", None) or exc).strip()
        for secret in self._secrets:
            text = text.replace(secret, "********")
        return text

    def _init_session(self):
        settings = ["statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout"]
        if self.server_version >= 170000:
            settings.append("transaction_timeout")
        with self.conn.cursor() as cur:
            for name in settings:
                cur.execute("SET %s = 0" % name)
            cur.execute("SET default_transaction_read_only = on")
            cur.execute("SELECT pg_catalog.set_config('search_path', '', false)")

    def query(self, sql, params=None, what="query the source"):
        try:
            with self.conn.cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchall()
        except psycopg2.Error as exc:
            text = self._scrub(exc)
            hint = None
            if "permission denied" in text:
                hint = ("Grant the rewind role EXECUTE on pg_ls_dir(text, boolean, boolean), "
                        "pg_stat_file(text, boolean), pg_read_binary_file(text) and "
                        "pg_read_binary_file(text, bigint, bigint, boolean), or use a superuser.")
            raise SourceError("could not %s: %s" % (what, text), hint=hint,
                              code="source_permission" if hint else "source_query") from None

    def read_file(self, path):
        rows = self.query(
            "SELECT pg_catalog.pg_read_binary_file(%s, 0, s.size, true) "
            "FROM pg_catalog.pg_stat_file(%s, true) AS s", (path, path),
            what="read %s from the source" % path)
        if not rows or rows[0][0] is None:
            return None
        return bytes(rows[0][0])

    def in_recovery(self):
        return self.query("SELECT pg_catalog.pg_is_in_recovery()")[0][0]

    def current_timeline(self, control):
        """A primary promoted moments ago still shows its old timeline in pg_control
        (before 16, until its end-of-recovery checkpoint completes): ask the server
        which timeline it writes WAL on. A standby reports what it receives."""
        if not self.in_recovery():
            name = self.query("SELECT pg_catalog.pg_walfile_name("
                              "pg_catalog.pg_current_wal_lsn())")[0][0]
            return max(control.timeline, int(name[:8], 16))
        rows = self.query("SELECT received_tli FROM pg_catalog.pg_stat_wal_receiver")
        received = rows[0][0] if rows and rows[0][0] else 0
        return max(control.timeline, received)

    def full_page_writes(self, control):
        return self.query("SHOW full_page_writes")[0][0] == "on"

    def close(self):
        conn, self.conn = getattr(self, "conn", None), None
        if conn is not None:
            conn.close()


def secrets_of(conninfo: str) -> list:
    """Passwords in a conninfo string or URI, to keep them out of every message."""
    secrets = []
    if HAS_PSYCOPG2:
        try:
            parsed = psycopg2.extensions.parse_dsn(conninfo)
            secrets.extend(v for k, v in parsed.items() if k in _SECRET_KEYS and v)
        except psycopg2.Error:
            pass
    secrets.extend(m.group(1) for m in re.finditer(r"password\s*=\s*'?([^'\s]+)", conninfo))
    secrets.extend(m.group(1) for m in re.finditer(r"://[^:/@]*:([^@]+)@", conninfo))
    return sorted(set(s for s in secrets if s), key=len, reverse=True)


def open_source(source_server: Optional[str] = None, source_pgdata: Optional[str] = None):
    """The Source for a module's parameters (exactly one of them is set)."""
    if source_server:
        return LibpqSource(source_server)
    if source_pgdata:
        if not os.path.isdir(source_pgdata):
            raise SourceError("source_pgdata %s is not a directory." % source_pgdata,
                              code="source_not_pgdata")
        return LocalSource(source_pgdata)
    return None
