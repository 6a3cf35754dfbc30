# -*- coding: utf-8 -*-
# Copyright: pgops.rewind developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A cleanly shut down data directory on this host, as a source."""

from __future__ import annotations

import os

from ..errors import RefusedError, SourceError
from ..pg.datadir import file_digest, list_datadir
from ..pg.timeline import history_of
from ..wal.reader import WalReader
from ..wal.segments import SegmentDirectory
from .interface import Source


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

    def digests(self, files):
        return {path: file_digest(os.path.join(self.pgdata, path)) for path, _size in files}

    def wal_position(self, control):
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
