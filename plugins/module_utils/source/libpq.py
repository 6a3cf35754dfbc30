# -*- coding: utf-8 -*-
# Copyright: pgops.rewind developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A running source server, read over ordinary libpq connections.

Only pg_ls_dir, pg_stat_file, pg_read_binary_file (and functions PUBLIC may call)
are used, so a non-superuser role granted those four functions is enough. Each
session zeroes its timeouts but statement_timeout (source_timeout) and is read-only;
each request is also bounded on this side (runtime/timeouts.py), so a hung source cannot
hang the run. Byte ranges are fetched in batches
(one query reads up to a thousand ranges), over `parallel` connections at once
(source/bulk.py has the transfer machinery).
"""

from __future__ import annotations

import os

from ..pg.datadir import DIRECTORY, FILE, SYMLINK, FileEntry, is_state_dir
from ..errors import SourceError
from .bulk import BinaryRows, batches_of, in_parallel
from ..pg.lsn import last_record_end, parse_lsn
from .interface import ServerSource
from ..pg.datadir import DigestUnavailable
from .connection import DEFAULT_CONNECT_TIMEOUT, ServerConnector, psycopg2
from ..runtime.ratelimit import RateLimit
from ..runtime.timeouts import TimeLimit

FETCH_BATCH_REQUESTS = 1000
FETCH_BATCH_BYTES = 8 << 20      # bounds the memory a batch of chunks takes
# What all batches in flight may hold: each connection has one batch under way and one
# waiting to be written (bulk.in_parallel), so more connections mean smaller batches.
FETCH_MEMORY = 32 << 20


def fetch_batch_bytes(connections: int) -> int:
    """A batch's share of FETCH_MEMORY, between one whole-file chunk (1 MB) and 8 MB."""
    return max(1 << 20, min(FETCH_BATCH_BYTES, FETCH_MEMORY // (2 * connections)))


_GRANTS_HINT = ("Grant the rewind role EXECUTE on pg_ls_dir(text, boolean, boolean), "
                "pg_stat_file(text, boolean), pg_read_binary_file(text) and "
                "pg_read_binary_file(text, bigint, bigint, boolean), or use a superuser.")

# What the rewind calls on the source (checked before the target is changed).
_FILE_FUNCTIONS = ("pg_catalog.pg_ls_dir(text, boolean, boolean)",
                   "pg_catalog.pg_stat_file(text, boolean)",
                   "pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean)")

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
# pg_filenode_relation() takes 0 for the database's default tablespace.
_NAMES_SQL = ("SELECT x.spc, x.rel, n.nspname, c.relname "
              "FROM unnest(%s::oid[], %s::oid[], %s::oid[]) AS x(lookup_spc, rel, spc) "
              "LEFT JOIN pg_catalog.pg_class c "
              "ON c.oid = pg_catalog.pg_filenode_relation(x.lookup_spc, x.rel) "
              "LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace")
_FETCH_SQL = ("SELECT path, begin, pg_catalog.pg_read_binary_file(path, begin, len, true) "
              "FROM unnest(%s::text[], %s::int8[], %s::int8[]) AS x(path, begin, len)")


class LibpqSource(ServerSource):
    """A running server reached with a libpq connection string."""

    kind = "libpq"

    def __init__(self, conninfo: str, connect_timeout: int = DEFAULT_CONNECT_TIMEOUT,
                 parallel: int = 1, source_timeout: int = 0, time_limit: TimeLimit = None,
                 max_rate: int = 0):
        self.parallel = max(1, parallel)
        self.source_timeout = source_timeout or 0
        self.time_limit = time_limit or TimeLimit(None)
        # max_rate: shared by every connection; charged what fetches and checksums read
        self.rate_limit = RateLimit(max_rate, self.time_limit)
        self._server = ServerConnector(conninfo, connect_timeout, self.source_timeout,
                                       self.time_limit, "the source server", read_only=True)
        self.conn = self._connect()
        self.server_version = self.conn.server_version

    # --- sessions (source/connection.py opens and guards them) --------------------------
    def _connect(self, dbname=None):
        return self._server.connect(dbname)

    def _call(self, conn, what, work):
        """work() (a request on `conn`) under the connector's watchdog; an error that is
        not a timeout says what went wrong on the source."""
        try:
            return self._server.call(conn, what, work)
        except psycopg2.Error as exc:
            self._run_failed(conn, exc, what)
            raise                   # not reached: _run_failed raises

    def tls(self) -> dict:
        """Whether the connection to the source is encrypted, and how it was verified."""
        try:
            info = self.conn.info
            in_use = bool(info.ssl_in_use)
            return {"in_use": in_use,
                    "protocol": info.ssl_attribute("protocol") if in_use else None,
                    "sslmode": info.dsn_parameters.get("sslmode")}
        except (AttributeError, psycopg2.Error):   # psycopg2 < 2.8
            return {"in_use": None, "protocol": None, "sslmode": self._server.given.get("sslmode")}

    def _scrub(self, exc) -> str:
        return self._server.scrub(exc)

    def _run(self, conn, sql, params, what):
        def work():
            with conn.cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchall()
        return self._call(conn, what, work)

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

    def read_range(self, path, offset, length):
        """One query on the main connection (fetch() may open more for bulk copies)."""
        rows = self.query("SELECT pg_catalog.pg_read_binary_file(%s, %s, %s, true)",
                          (path, offset, length), what="read %s from the source" % path)
        return None if not rows or rows[0][0] is None else bytes(rows[0][0])

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

    def check_unchanged(self, before, timeline, after):
        super().check_unchanged(before, timeline, after)
        now = self.current_timeline(after)      # a running server's pg_control moves on
        if now != timeline:
            raise SourceError("the source moved from timeline %d to %d during the rewind."
                              % (timeline, now), code="source_timeline_changed")

    def check_access(self):
        rows = self.query("SELECT f, pg_catalog.has_function_privilege(f, 'EXECUTE') "
                          "FROM unnest(%s::text[]) AS f", (list(_FILE_FUNCTIONS),),
                          what="check the source role's privileges")
        missing = [name for name, allowed in rows if not allowed]
        if missing:
            raise SourceError("the source role may not execute %s." % ", ".join(missing),
                              hint=_GRANTS_HINT, code="source_permission")

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
        return last_record_end(parse_lsn(lsn), control.xlog_seg_size), int(name[:8], 16)

    # --- names for the discarded-work report ------------------------------------------
    def catalog_names(self, relations, database_oids) -> tuple:
        """({(spc, db, rel): (schema, name)}, {db oid: name}): relations the source has
        under the same relfilenode, looked up in each database's catalog. A database
        that cannot be reached leaves its relations unnamed; this is a report."""
        found = {}
        for oid, name, default_spc, allowed in self.query(
                "SELECT oid, datname, dattablespace, datallowconn FROM pg_catalog.pg_database",
                what="list the source's databases"):
            found[oid] = (name, default_spc, allowed)
        databases = {oid: found[oid][0] for oid in database_oids if oid in found}
        names = {}
        for db in sorted({rel[1] for rel in relations}):
            if db not in found or not found[db][2]:
                continue
            wanted = [r for r in relations if r[1] == db]
            try:
                conn = self._connect(found[db][0])
            except SourceError:
                continue
            try:
                rows = self._run(conn, _NAMES_SQL, (
                    [0 if spc == found[db][1] else spc for spc, _db, _rel in wanted],
                    [rel for _spc, _db, rel in wanted], [spc for spc, _db, _rel in wanted]),
                    "name relations")
            except SourceError:
                rows = []
            finally:
                conn.close()
            for spc, rel, schema, name in rows:
                if name is not None:
                    names[(spc, db, rel)] = (schema, name)
        return names, databases

    # --- WAL reserved for a clone ------------------------------------------------------
    def reserve_wal_temporarily(self):
        """A temporary physical slot on this session, reserving WAL from now until it is
        released or the session ends (a killed run leaves nothing behind). None when the
        role may not create slots (no REPLICATION): the clone then relies on the WAL the
        source keeps anyway, and says so if it was recycled."""
        name = "pgops_clone_%d" % os.getpid()
        try:
            self.query("SELECT pg_catalog.pg_create_physical_replication_slot(%s, true, true)",
                       (name,), what="reserve WAL for the clone")
        except SourceError:
            return None
        return name

    def release_wal(self, slot) -> None:
        if slot:
            self.query("SELECT pg_catalog.pg_drop_replication_slot(%s)", (slot,),
                       what="release the clone's WAL reservation")

    def rate_report(self):
        return self.rate_limit.report()

    # --- files ------------------------------------------------------------------------
    def list_files(self):
        files = {}
        for path, size, isdir, link_target in self.query(_LIST_SQL, what="list the source's files"):
            if size is None or is_state_dir(path):
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
        # batches of at most 200 files and 1 GB: each query stays well inside source_timeout
        for part in batches_of(files, 200, 1 << 30, size=lambda item: item[1]):
            self.rate_limit.take(sum(f[1] for f in part), "checksum source files")
            try:
                found.update(self.query(_DIGEST_SQL, ([f[0] for f in part], [f[1] for f in part]),
                                        what="checksum source files"))
            except SourceError as exc:
                if exc.code not in ("source_permission", "source_query"):
                    raise               # the connection, not the digest, failed
                raise DigestUnavailable("the source refused sha256(): %s"
                                        % str(exc).splitlines()[0]) from None
        return found

    def fetch(self, requests):
        batches = batches_of(requests, FETCH_BATCH_REQUESTS, fetch_batch_bytes(self.parallel))
        if self.parallel == 1:
            for batch in batches:
                yield from self._fetch_batch(self.conn, batch)
            return
        yield from self._fetch_parallel(batches)

    def _fetch_batch(self, conn, batch):
        """One query for the whole batch, its result streamed in COPY's binary format
        (bytea without hex encoding: half the bytes on the wire, no decoding)."""
        rows = BinaryRows()
        charged = sum(r[2] for r in batch)
        self.rate_limit.take(charged, "read files from the source")

        def work():
            with conn.cursor() as cur:
                query = cur.mogrify(
                    "COPY (" + _FETCH_SQL + ") TO STDOUT WITH (FORMAT binary)",
                    ([r[0] for r in batch], [r[1] for r in batch], [r[2] for r in batch]))
                cur.copy_expert(query, rows)
        self._call(conn, "read files from the source", work)
        rows = rows.rows
        self.rate_limit.refund(charged - sum(len(row[2]) for row in rows if row[2] is not None))
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
