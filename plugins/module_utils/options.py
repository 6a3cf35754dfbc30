# -*- coding: utf-8 -*-
# Copyright: pgops.rewind developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The options of a run, as the engine sees them (the modules' parameters map here).

A default the modules share is not written here but named: it is defined once where the
engine uses it (source/connection.py, plan/assessment.py), and the modules' argument spec
(module_support.py), the CLI and the doc fragments state the same value (a unit test
compares them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from .pg.datadir import DEFAULT_KEEP_FILES
from .plan.assessment import DEFAULT_ALLOW_OLDER_SOURCE, DEFAULT_CLONE_WHEN, DEFAULT_FALLBACK
from .source.connection import DEFAULT_CONNECT_TIMEOUT, DEFAULT_SOURCE_TIMEOUT


@dataclass
class RewindOptions:
    target_pgdata: str
    source_server: Optional[str] = None
    source_pgdata: Optional[str] = None
    write_recovery_conf: bool = False
    primary_conninfo: Optional[str] = None
    keep_files: tuple = DEFAULT_KEEP_FILES
    ensure_shutdown: bool = True
    bindir: Optional[str] = None
    config_file: Optional[str] = None
    restore_command: Optional[str] = None
    restore_target_wal: bool = False
    parallel: int = 0                      # connections to the source; 0: from the CPUs
    max_rate: object = 0                   # bytes/s read from a source server (or "512k"); 0: no cap
    sync: bool = True
    progress_file: Optional[str] = None    # None: progress.default_path(); "": none
    timeout: int = 0                       # seconds for the whole run; 0: unbounded
    connect_timeout: int = DEFAULT_CONNECT_TIMEOUT   # when source_server names none
    source_timeout: int = DEFAULT_SOURCE_TIMEOUT     # per request to the source; 0: unbounded
    fallback: str = DEFAULT_FALLBACK       # or "clone": rebuild when a rewind cannot work
    clone_when: str = DEFAULT_CLONE_WHEN   # or "cheaper", "always"
    allow_older_source: bool = DEFAULT_ALLOW_OLDER_SOURCE  # rewind the newer primary onto it
    clone_discard_old: bool = False
    discarded_file: Optional[str] = None   # the discarded-work report, also as JSON here
    reserve_wal: bool = True               # a physical slot on the source (standby/walreserve.py)
    slot_name: Optional[str] = None        # None: walreserve.default_slot_name()
    keep_slot: Optional[bool] = None       # None: as write_recovery_conf
    check_mode: bool = False
    target_server: Optional[str] = None    # check mode on a running target: its WAL position
    use_wal_summaries: str = "auto"        # anything else: always scan the target's WAL
