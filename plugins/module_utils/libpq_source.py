# -*- coding: utf-8 -*-
# Copyright: pgops.rewind developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A running source server, read over ordinary libpq connections.

Only pg_ls_dir, pg_stat_file, pg_read_binary_file (and functions PUBLIC may call)
are used, so a non-superuser role granted those four functions is enough. Each
session zeroes its timeouts and is read-only. Byte ranges are fetched in batches
(one query reads up to a thousand ranges), over `parallel` connections at once
(bulk.py has the transfer machinery).
"""

from __future__ import annotations

import re

from .errors import SourceError
from .filemap import DIRECTORY, FILE, STATE_DIR, SYMLINK, FileEntry
from .bulk import BinaryRows, batches_of, in_parallel
from .lsn import parse_lsn
from .source import DigestUnavailable, Source

try:
    import psycopg2
    import psycopg2.extensions
    HAS_PSYCOPG2 = True
except ImportError:  # pragma: no cover - depends on the host
    psycopg2 = None
    HAS_PSYCOPG2 = False

FETCH_BATCH_REQUESTS = 1000
FETCH_BATCH_BYTES = 8 << 20      # bounds the memory a batch of chunks takes
_SECRET_KEYS = ("password",)
_GRANTS_HINT = ("Grant the rewind role EXECUTE on pg_ls_dir(text, boolean, boolean), "
                "pg_stat_file(text, boolean), pg_read_binary_file(text) and "
                "pg_read_binary_file(text, bigint, bigint, boolean), or use a superuser.")

# Every file and directory under the data directory, with tablespace link targets.
_LIST_SQL = """
WITH RECURSIVE files (path, name, size, isdir) AS (
    SELECT ''::text, name, st.size, st.isdir
    FROM pg_catalog.pg_ls_dir('.', true, false) AS name,
         pg_catalog.pg_stat_file(name, true) AS st
  UNION ALL
    SELECT parent.path || parent.name || '/', child, st.size, st.isdir
    FROM files AS parent,
         pg_catalog.pg_ls_dir(parent.path || parent.name, true, false) AS child,
         pg_catalog.pg_stat_file(parent.path || parent.name || '/' || child, true) AS st
    WHERE parent.isdir
)
SELECT files.path || files.name, files.size, files.isdir,
       pg_catalog.pg_tablespace_location(spc.oid)
FROM files LEFT JOIN pg_catalog.pg_tablespace AS spc
  ON files.path = 'pg_tblspc/' AND spc.oid::text = files.name
"""
_DIGEST_SQL = ("SELECT path, pg_catalog.encode(pg_catalog.sha256("
               "pg_catalog.pg_read_binary_file(path, 0, size, true)), 'hex') "
               "FROM unnest(%s::text[], %s::int8[]) AS x(path, size)")
_FETCH_SQL = ("SELECT path, begin, pg_catalog.pg_read_binary_file(path, begin, len, true) "
              "FROM unnest(%s::text[], %s::int8[], %s::int8[]) AS x(path, begin, len)")


class LibpqSource(Source):
    """A running server reached with a libpq connection string."""

    kind = "libpq"
    is_running = True

    def __init__(self, conninfo: str, connect_timeout: int = 30, parallel: int = 1):
        if not HAS_PSYCOPG2:
            raise SourceError("the psycopg2 Python package is needed on the target host to "
                              "read the source over libpq.", code="missing_psycopg2")
        self._conninfo = conninfo
        self._connect_timeout = connect_timeout
        self._secrets = secrets_of(conninfo)
        self.parallel = max(1, parallel)
        self.conn = self._connect()
        self.server_version = self.conn.server_version

    # --- sessions ---------------------------------------------------------------
    def _connect(self):
        params = {"connect_timeout": self._connect_timeout}
        if "fallback_application_name" not in self._conninfo:
            params["fallback_application_name"] = "pgops_rewind"
        try:
            conn = psycopg2.connect(self._conninfo, **params)
        except psycopg2.Error as exc:
            raise SourceError("cannot connect to the source server: %s" % self._scrub(exc),
                              code="source_unreachable") from None
        conn.autocommit = True
        settings = ["statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout"]
        if conn.server_version >= 170000:
            settings.append("transaction_timeout")
        with conn.cursor() as cur:
            for name in settings:
                cur.execute("SET %s = 0" % name)
            cur.execute("SET default_transaction_read_only = on")
            cur.execute("SELECT pg_catalog.set_config('search_path', '', false)")
        return conn

    def _scrub(self, exc) -> str:
        text = str(getattr(exc, "pgerror", None) or exc).strip()
        for secret in self._secrets:
            text = text.replace(secret, "********")
        return text

    def _run(self, conn, sql, params, what):
        try:
            with conn.cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchall()
        except psycopg2.Error as exc:
            self._run_failed(conn, exc, what)

    def _run_failed(self, conn, exc, what):
        text = self._scrub(exc)
        if "permission denied" in text:
            raise SourceError("could not %s: %s" % (what, text), hint=_GRANTS_HINT,
                              code="source_permission") from None
        if conn.closed or isinstance(exc, psycopg2.OperationalError):
            raise SourceError("lost the connection to the source while trying to %s: %s"
                              % (what, text), code="source_changed") from None
        raise SourceError("could not %s: %s" % (what, text), code="source_query") from None

    def query(self, sql, params=None, what="query the source"):
        return self._run(self.conn, sql, params, what)

    def close(self):
        conn, self.conn = getattr(self, "conn", None), None
        if conn is not None:
            conn.close()

    # --- facts --------------------------------------------------------------------
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

    def wal_position(self, control):
        if self.in_recovery():
            lsn = self.query("SELECT pg_catalog.pg_last_wal_replay_lsn()::text")[0][0]
        else:
            lsn = self.query("SELECT pg_catalog.pg_current_wal_lsn()::text")[0][0]
        return parse_lsn(lsn) if lsn else 0

    def wal_files_end(self, control):
        if self.in_recovery():
            lsn = self.query("SELECT greatest(pg_catalog.pg_last_wal_receive_lsn(), "
                             "pg_catalog.pg_last_wal_replay_lsn())::text")[0][0]
        else:
            lsn = self.query("SELECT pg_catalog.pg_current_wal_insert_lsn()::text")[0][0]
        return parse_lsn(lsn) if lsn else 0

    def end_of_wal(self, control):
        if self.in_recovery():
            # A standby: its pages on disk are consistent up to its minimum recovery point.
            return super().end_of_wal(control)
        lsn, name = self.query(
            "SELECT pg_catalog.pg_current_wal_insert_lsn()::text, "
            "pg_catalog.pg_walfile_name(pg_catalog.pg_current_wal_insert_lsn())")[0]
        return parse_lsn(lsn), int(name[:8], 16)

    # --- files ------------------------------------------------------------------------
    def list_files(self):
        files = {}
        for path, size, isdir, link_target in self.query(_LIST_SQL, what="list the source's files"):
            if size is None or path == STATE_DIR or path.startswith(STATE_DIR + "/"):
                continue                    # vanished while listed; or our own state
            if link_target and link_target.startswith("/"):
                files[path] = FileEntry(SYMLINK, 0, link_target)
            elif isdir:                     # in-place tablespaces are plain directories
                files[path] = FileEntry(DIRECTORY, 0)
            else:
                files[path] = FileEntry(FILE, size)
        return files

    def digests(self, files):
        """sha256(bytea) (PostgreSQL 11+, EXECUTE to PUBLIC by default, allowed on FIPS
        hosts). Refused or missing, it raises DigestUnavailable; a lost connection is
        an error as anywhere else."""
        found = {}
        for start in range(0, len(files), 200):
            part = files[start:start + 200]
            try:
                with self.conn.cursor() as cur:
                    cur.execute(_DIGEST_SQL, ([f[0] for f in part], [f[1] for f in part]))
                    found.update(cur.fetchall())
            except psycopg2.Error as exc:
                if self.conn.closed or isinstance(exc, psycopg2.OperationalError):
                    self._run_failed(self.conn, exc, "checksum source files")
                raise DigestUnavailable("the source refused sha256(): %s"
                                        % self._scrub(exc).splitlines()[0]) from None
        return found

    def fetch(self, requests):
        batches = batches_of(requests, FETCH_BATCH_REQUESTS, FETCH_BATCH_BYTES)
        if self.parallel == 1:
            for batch in batches:
                yield from self._fetch_batch(self.conn, batch)
            return
        yield from self._fetch_parallel(batches)

    def _fetch_batch(self, conn, batch):
        """One query for the whole batch, its result streamed in COPY's binary format
        (bytea without hex encoding: half the bytes on the wire, no decoding)."""
        rows = BinaryRows()
        try:
            with conn.cursor() as cur:
                query = cur.mogrify(
                    "COPY (" + _FETCH_SQL + ") TO STDOUT WITH (FORMAT binary)",
                    ([r[0] for r in batch], [r[1] for r in batch], [r[2] for r in batch]))
                cur.copy_expert(query, rows)
        except psycopg2.Error as exc:
            self._run_failed(conn, exc, "read files from the source")
        rows = rows.rows
        if len(rows) != len(batch):
            raise SourceError("the source returned %d chunks for %d requests."
                              % (len(rows), len(batch)), code="source_protocol")
        out = []
        for (path, offset, length), (got_path, got_offset, chunk) in zip(batch, rows):
            if (got_path, got_offset) != (path, offset):
                raise SourceError("the source returned %s at %d for a request of %s at %d."
                                  % (got_path, got_offset, path, offset),
                                  code="source_protocol")
            if chunk is not None and len(chunk) > length:
                raise SourceError("the source returned more than requested of %s." % path,
                                  code="source_protocol")
            out.append((path, offset, chunk))
        return out

    def _fetch_parallel(self, batches):
        """Batches fetched by one thread per connection; the caller gets the chunks in
        whatever order they arrive (each is written at its own offset)."""
        conns = [self.conn]
        try:
            conns += [self._connect() for _unused in range(self.parallel - 1)]
            for chunks in in_parallel(batches, [
                    (lambda batch, conn=conn: self._fetch_batch(conn, batch)) for conn in conns]):
                yield from chunks
        finally:
            for conn in conns[1:]:
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
