# -*- coding: utf-8 -*-
# Copyright: pgops.rewind developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where the good copy comes from: the new primary, read through a small interface.

`LocalSource` (local.py) reads a cleanly shut down data directory on this host;
`LibpqSource` (libpq.py) reads a running server. Everything above sees only the
`Source` methods. A running server can do more -- answer queries, reserve its WAL --
and says so by being a `ServerSource`; the callers that need that (the clone, the
assessment's privilege checks) take a ServerSource, which `running_server()` gives
them: the one place a Source is checked for being one.
"""

from __future__ import annotations

from typing import Iterator, Optional

from ..pg.controlfile import CONTROL_PATH, ControlFile, parse_control_file
from ..errors import SourceError


class Source:
    """The source cluster, as the engine needs to see it."""

    kind = "abstract"
    parallel = 1            # connections the copy fetches over

    def rate_report(self) -> Optional[dict]:
        """What max_rate did ({bytes_per_second, waited_s}); None when nothing is capped."""
        return None

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
        raise NotImplementedError

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


class ServerSource(Source):
    """A running server as the source: it keeps writing while it is read (a listed size
    is a lower bound), and it answers queries and can reserve its WAL, which a clone (a
    base backup) and the assessment's privilege checks need."""

    def query(self, sql: str, params=None, what: str = "query the source") -> list:
        """The rows of one SQL statement on the source, bounded as every request is."""
        raise NotImplementedError

    def reserve_wal_temporarily(self) -> Optional[str]:
        """A slot reserving the source's WAL from now until release_wal() or the end of
        the session; None when the role may not create one."""
        raise NotImplementedError

    def release_wal(self, slot: Optional[str]) -> None:
        raise NotImplementedError


def running_server(source: Optional[Source]) -> Optional[ServerSource]:
    """`source` as a ServerSource when it is a running server, else None: the one check
    of what kind a source is."""
    return source if isinstance(source, ServerSource) else None
