# -*- coding: utf-8 -*-
# Copyright: pgops.rewind developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where the good copy comes from: the new primary, read through a small interface.

`LocalSource` (here) reads a cleanly shut down data directory on this host;
`LibpqSource` (libpq_source.py) reads a running server. Everything above sees only
the `Source` methods.
"""

from __future__ import annotations

import os
import stat
from typing import Iterator, Optional

from .controlfile import CONTROL_PATH, ControlFile, parse_control_file
from .datadir import DIRECTORY, FILE, STATE_DIR, SYMLINK, FileEntry
from .errors import RefusedError, SourceError


class DigestUnavailable(Exception):
    """A side cannot checksum files (a refused or missing digest function): the
    identical-file check is skipped, never the rewind."""


class Source:
    """The source cluster, as the engine needs to see it."""

    kind = "abstract"
    is_running = False      # a server that keeps writing (a clone needs one)
    parallel = 1            # connections the copy fetches over

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

    def check_access(self) -> None:
        """Refuse now, before the target is changed, if the rewind could not read the
        source later (a libpq role without the file-access functions)."""

    def tls(self) -> Optional[dict]:
        """How the connection to the source is protected (None: there is none)."""
        return None

    def catalog_names(self, relations, database_oids) -> tuple:
        """({relation: (schema, name)}, {database oid: name}) where the source can tell:
        a stopped data directory cannot be asked."""
        return {}, {}

    def check_consistent(self, control: ControlFile) -> None:
        """Refuse a source whose files are not a consistent copy to take (a data
        directory whose server crashed)."""

    def check_unchanged(self, before: ControlFile, timeline: int, after: ControlFile) -> None:
        """Refuse, at the end of a rewind, a source that became something else than the
        one the plan was made from (`before` on `timeline`; `after`: pg_control now)."""
        if after.system_identifier != before.system_identifier:
            raise SourceError("the source changed identity during the rewind.",
                              code="source_changed")

    def list_files(self) -> dict:
        """Every path of the data directory: {relative path: FileEntry}."""
        raise NotImplementedError

    def fetch(self, requests) -> Iterator[tuple]:
        """Read byte ranges: for each (path, offset, length) request yield
        (path, offset, data), data None when the file is gone; data may be shorter
        than asked at the end of a file (or longer, see COPY_WINDOW)."""
        raise NotImplementedError

    def read_range(self, path: str, offset: int, length: int) -> Optional[bytes]:
        """Up to `length` bytes of a file from `offset` (None when the file is missing)."""
        for _path, _offset, data in list(self.fetch([(path, offset, length)])):
            return None if data is None else bytes(data[:length])
        return None

    def digests(self, files) -> dict:
        """{path: SHA-256 hex} of the source's copies of [(path, size)] (None when gone);
        DigestUnavailable when the source cannot checksum."""
        from .execute import file_digest
        return {path: file_digest(os.path.join(self.pgdata, path)) for path, _size in files}

    def end_of_wal(self, control: ControlFile) -> tuple:
        """(LSN, timeline) that replay must reach before the copied files are consistent."""
        return max(control.checkpoint, control.min_recovery_point), control.timeline

    def wal_position(self, control: ControlFile) -> int:
        """How far the source's WAL goes now (written or replayed)."""
        raise NotImplementedError

    def wal_files_end(self, control: ControlFile) -> int:
        """How far the WAL in the source's pg_wal holds anything (written or received);
        segments starting beyond are empty preallocations."""
        return self.wal_position(control)

    def close(self) -> None:
        pass


class LocalSource(Source):
    """A data directory on this host whose server is cleanly shut down."""

    kind = "local"

    def __init__(self, pgdata: str):
        self.pgdata = os.path.abspath(pgdata)

    def check_consistent(self, control):
        if not control.cleanly_shut_down:
            raise RefusedError("the source data directory was not shut down cleanly (state: %s)."
                               % control.state_name,
                               hint="Stop the source server cleanly, or use source_server.",
                               code="source_unclean")

    def check_unchanged(self, before, timeline, after):
        super().check_unchanged(before, timeline, after)
        if after.raw != before.raw:     # a stopped server's pg_control never changes
            raise SourceError("the source data directory was modified during the rewind.",
                              code="source_changed")

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
        from .wal import WalReader
        from .walsegments import SegmentDirectory
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


AUTO_CONNECTIONS = (4, 8)       # fewest, most
# Whole files read front to back (a clone): more streams interleave them on the source's
# disk and were slower (bench, 2.3 GB cold: 4.3-4.6 s over 2, 5.1-5.2 s over 4).
WHOLE_FILE_CONNECTIONS = 2


def fetch_connections(asked: int, whole_files: bool = False) -> int:
    """Connections to fetch over: as asked, or (0) two per CPU of this host, 4 to 8 --
    2 for a copy of whole files. A rewind's copy mostly waits for the source's disk
    (changed blocks are read at random), so more requests in flight than CPUs pay: on 2
    cores, 4 connections copied the bench's blocks in 2.2 s against 2.7-3.1 s with 2
    (docs/design.md). The source's CPU count cannot be read over an ordinary
    connection, and a handful of sessions is little for a primary."""
    if asked > 0:
        return asked
    if whole_files:
        return WHOLE_FILE_CONNECTIONS
    fewest, most = AUTO_CONNECTIONS
    return max(fewest, min(most, 2 * (os.cpu_count() or 1)))


def open_source(source_server: Optional[str] = None, source_pgdata: Optional[str] = None,
                parallel: int = 1, **libpq_options):
    """The Source for a module's parameters (exactly one of them is set); libpq_options
    (connect_timeout, source_timeout, time_limit) go to a LibpqSource."""
    if source_server:
        from .libpq_source import LibpqSource
        return LibpqSource(source_server, parallel=fetch_connections(parallel),
                           **libpq_options)
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
