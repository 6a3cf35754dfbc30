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
import stat
from typing import Iterator, Optional

from .controlfile import CONTROL_PATH, ControlFile, parse_control_file
from .errors import SourceError
from .filemap import DIRECTORY, FILE, STATE_DIR, SYMLINK, FileEntry
from .lsn import parse_lsn

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

    def list_files(self) -> dict:
        """Every path of the data directory: {relative path: FileEntry}."""
        raise NotImplementedError

    def fetch(self, requests) -> Iterator[tuple]:
        """Read byte ranges: for each (path, offset, length) request yield
        (path, offset, data), data None when the file is gone; data may be shorter
        than asked at the end of a file (or longer, see COPY_WINDOW)."""
        raise NotImplementedError

    def end_of_wal(self, control: ControlFile) -> tuple:
        """(LSN, timeline) that replay must reach before the copied files are consistent."""
        return max(control.checkpoint, control.min_recovery_point), control.timeline

    def wal_position(self, control: ControlFile) -> int:
        """How far the source's WAL goes now (written or replayed)."""
        raise NotImplementedError

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

    def list_files(self):
        return list_datadir(self.pgdata)

    def wal_position(self, control):
        from .timeline import history_of
        from .wal import SegmentDirectory, WalReader
        history = history_of(control.timeline, self.read_file, "source")
        reader = WalReader(SegmentDirectory(os.path.join(self.pgdata, "pg_wal"),
                                            control.xlog_seg_size),
                           control.fmt, control.xlog_seg_size, history,
                           control.system_identifier)
        try:
            return max(reader.record_at(control.checkpoint).end_lsn, control.min_recovery_point)
        finally:
            reader.close()

    def fetch(self, requests):
        handle = handle_path = None
        try:
            for path, offset, length in requests:
                if path != handle_path:
                    if handle is not None:
                        handle.close()
                    handle_path = path
                    try:
                        handle = open(os.path.join(self.pgdata, path), "rb")
                    except FileNotFoundError:
                        handle = None
                if handle is None:
                    yield path, offset, None
                    continue
                yield path, offset, os.pread(handle.fileno(), length, offset)
        except OSError as exc:
            raise SourceError("cannot read %s in the source data directory: %s"
                              % (handle_path, exc.strerror), code="source_unreadable") from None
        finally:
            if handle is not None:
                handle.close()


_SECRET_KEYS = ("password",)
FETCH_BATCH_REQUESTS = 1000
FETCH_BATCH_BYTES = 16 << 20     # bounds the memory a batch of chunks takes

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

    def fetch(self, requests):
        batch, batch_bytes = [], 0
        for request in requests:
            batch.append(request)
            batch_bytes += request[2]
            if len(batch) >= FETCH_BATCH_REQUESTS or batch_bytes >= FETCH_BATCH_BYTES:
                yield from self._fetch_batch(batch)
                batch, batch_bytes = [], 0
        if batch:
            yield from self._fetch_batch(batch)

    def _fetch_batch(self, batch):
        paths = [r[0] for r in batch]
        rows = self.query(
            "SELECT path, begin, pg_catalog.pg_read_binary_file(path, begin, len, true) "
            "FROM unnest(%s::text[], %s::int8[], %s::int8[]) AS x(path, begin, len)",
            (paths, [r[1] for r in batch], [r[2] for r in batch]),
            what="read files from the source")
        if len(rows) != len(batch):
            raise SourceError("the source returned %d chunks for %d requests."
                              % (len(rows), len(batch)), code="source_protocol")
        for (path, offset, length), (got_path, got_offset, chunk) in zip(batch, rows):
            if (got_path, got_offset) != (path, offset):
                raise SourceError("the source returned %s at %d for a request of %s at %d."
                                  % (got_path, got_offset, path, offset),
                                  code="source_protocol")
            if chunk is not None and len(chunk) > length:
                raise SourceError("the source returned more than requested of %s." % path,
                                  code="source_protocol")
            yield path, offset, None if chunk is None else bytes(chunk)

    def wal_position(self, control):
        if self.in_recovery():
            lsn = self.query("SELECT pg_catalog.pg_last_wal_replay_lsn()::text")[0][0]
        else:
            lsn = self.query("SELECT pg_catalog.pg_current_wal_lsn()::text")[0][0]
        return parse_lsn(lsn) if lsn else 0

    def end_of_wal(self, control):
        if self.in_recovery():
            # A standby: its pages on disk are consistent up to its minimum recovery point.
            return super().end_of_wal(control)
        lsn, name = self.query("SELECT pg_catalog.pg_current_wal_insert_lsn()::text, "
                               "pg_catalog.pg_walfile_name(pg_catalog.pg_current_wal_insert_lsn())")[0]
        return parse_lsn(lsn), int(name[:8], 16)

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


def list_datadir(root: str) -> dict:
    """Every path under a local data directory: {relative path: FileEntry}.

    Symlinks are reported as such; only tablespace links (pg_tblspc/<oid>) and a
    symlinked pg_wal are followed. Files that vanish while listed are skipped.
    """
    files = {}
    pending = [""]
    while pending:
        rel_dir = pending.pop()
        try:
            entries = list(os.scandir(os.path.join(root, rel_dir) if rel_dir else root))
        except FileNotFoundError:
            continue
        for entry in entries:
            path = rel_dir + entry.name if not rel_dir else rel_dir + "/" + entry.name
            if path == STATE_DIR:
                continue
            try:
                info = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            if stat.S_ISLNK(info.st_mode):
                follow = path == "pg_wal" or (rel_dir == "pg_tblspc")
                if path == "pg_wal":
                    files[path] = FileEntry(DIRECTORY, 0)
                else:
                    files[path] = FileEntry(SYMLINK, 0, os.readlink(entry.path))
                if follow and os.path.isdir(entry.path):
                    pending.append(path)
            elif stat.S_ISDIR(info.st_mode):
                files[path] = FileEntry(DIRECTORY, 0)
                pending.append(path)
            elif stat.S_ISREG(info.st_mode):
                files[path] = FileEntry(FILE, info.st_size)
    return files
