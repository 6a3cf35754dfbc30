# -*- coding: utf-8 -*-
# Copyright: pgops.rewind developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The options of a run, as the engine sees them (the modules' parameters map here)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from .pg.datadir import DEFAULT_KEEP_FILES


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
    sync: bool = True
    progress_file: Optional[str] = None    # None: progress.default_path(); "": none
    timeout: int = 0                       # seconds for the whole run; 0: unbounded
    connect_timeout: int = 30              # when source_server names none
    source_timeout: int = 300              # per request to the source; 0: unbounded
    fallback: str = "fail"                 # or "clone": rebuild when a rewind cannot work
    clone_when: str = "impossible"         # or "cheaper"
    clone_discard_old: bool = False
    discarded_file: Optional[str] = None   # the discarded-work report, also as JSON here
    reserve_wal: bool = True               # a physical slot on the source (standby/walreserve.py)
    slot_name: Optional[str] = None        # None: walreserve.default_slot_name()
    keep_slot: Optional[bool] = None       # None: as write_recovery_conf
    check_mode: bool = False
    use_wal_summaries: str = "auto"        # anything else: always scan the target's WAL
