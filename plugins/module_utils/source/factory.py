# -*- coding: utf-8 -*-
# Copyright: pgops.rewind developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Source a run's parameters name, and how many connections it fetches over."""

from __future__ import annotations

import os
from typing import Optional

from ..errors import SourceError
from .local import LocalSource


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
        from .libpq import LibpqSource     # psycopg2 only where a server is read
        return LibpqSource(source_server, parallel=fetch_connections(parallel),
                           **libpq_options)
    if source_pgdata:
        if not os.path.isdir(source_pgdata):
            raise SourceError("source_pgdata %s is not a directory." % source_pgdata,
                              code="source_not_pgdata")
        return LocalSource(source_pgdata)
    return None
