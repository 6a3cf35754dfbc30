# -*- coding: utf-8 -*-
# Copyright: pgops.rewind developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What differs between PostgreSQL majors, as data.

Everything version-specific the engine needs is a field of `MajorFormat`, one
row per supported major. Code asks the row (`fmt.wal_page_magic`) instead of
comparing version numbers. Values were checked against real clusters of every
major (see tests/unit and tests/integration).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ControlFileError


@dataclass(frozen=True)
class DbaseInfo:
    """Info codes of the Database resource manager (renumbered in 15) and the shape of
    its drop record (one tablespace in 11-12, a counted list from 13)."""

    create_file_copy: int
    create_wal_log: int | None
    drop: int
    drop_lists_tablespaces: bool


@dataclass(frozen=True)
class ImageFlags:
    """bimg_info bits of full-page images (renumbered in 15 for lz4/zstd)."""

    has_hole: int
    apply: int
    compressed_mask: int


@dataclass(frozen=True)
class BackupFunctions:
    """The non-exclusive base backup functions (renamed in 15), as SQL and as the
    signatures to check privileges on."""

    start_sql: str
    stop_sql: str
    signatures: tuple


_OLD_BACKUP = BackupFunctions(
    "SELECT pg_catalog.pg_start_backup(%s, true, false)",
    "SELECT lsn, labelfile, spcmapfile FROM pg_catalog.pg_stop_backup(false, false)",
    ("pg_catalog.pg_start_backup(text, boolean, boolean)",
     "pg_catalog.pg_stop_backup(boolean, boolean)"))
_NEW_BACKUP = BackupFunctions(
    "SELECT pg_catalog.pg_backup_start(%s, true)",
    "SELECT lsn, labelfile, spcmapfile FROM pg_catalog.pg_backup_stop(false)",
    ("pg_catalog.pg_backup_start(text, boolean)", "pg_catalog.pg_backup_stop(boolean)"))
BACKUP_FUNCTIONS = {11: _OLD_BACKUP, 12: _OLD_BACKUP, 13: _OLD_BACKUP, 14: _OLD_BACKUP,
                    15: _NEW_BACKUP, 16: _NEW_BACKUP, 17: _NEW_BACKUP, 18: _NEW_BACKUP}


@dataclass(frozen=True)
class MajorFormat:
    major: int
    catversion: int
    control_version: int
    control_layout: str          # key into controlfile.LAYOUTS
    wal_page_magic: int
    checkpoint_size: int         # sizeof(CheckPoint): main data of checkpoint records
    dbase: DbaseInfo
    image: ImageFlags
    max_builtin_rmid: int = 21
    custom_rmgrs: bool = False            # ids 128-255 valid (15+)
    toplevel_xid_block: bool = False      # XLR_BLOCK_ID_TOPLEVEL_XID (14+)
    recovery_conf: bool = False           # standby configured by recovery.conf (11)
    transaction_timeout: bool = False     # the GUC exists (17+)
    wal_summaries: bool = False           # pg_wal/summaries, summarize_wal (17+)
    # sizeof(xl_parameter_change): main data of XLOG_PARAMETER_CHANGE (12 added
    # max_wal_senders: five ints and two bools before, six ints and two bools since)
    parameter_change_size: int = 28

    @property
    def tablespace_dir(self) -> str:
        """TABLESPACE_VERSION_DIRECTORY: the per-major directory inside a tablespace."""
        return "PG_%d_%d" % (self.major, self.catversion)

    @property
    def backup(self) -> BackupFunctions:
        return BACKUP_FUNCTIONS[self.major]


_DBASE_11 = DbaseInfo(create_file_copy=0x00, create_wal_log=None, drop=0x10,
                      drop_lists_tablespaces=False)
_DBASE_13 = DbaseInfo(create_file_copy=0x00, create_wal_log=None, drop=0x10,
                      drop_lists_tablespaces=True)
_DBASE_15 = DbaseInfo(create_file_copy=0x00, create_wal_log=0x10, drop=0x20,
                      drop_lists_tablespaces=True)
_OLD_IMAGE = ImageFlags(has_hole=0x01, apply=0x04, compressed_mask=0x02)
_NEW_IMAGE = ImageFlags(has_hole=0x01, apply=0x02, compressed_mask=0x04 | 0x08 | 0x10)

FORMATS = {
    11: MajorFormat(11, 201809051, 1100, "v11", 0xD098, 80, _DBASE_11, _OLD_IMAGE,
                    recovery_conf=True, parameter_change_size=24),
    12: MajorFormat(12, 201909212, 1201, "v12", 0xD101, 88, _DBASE_11, _OLD_IMAGE),
    13: MajorFormat(13, 202007201, 1300, "v13", 0xD106, 88, _DBASE_13, _OLD_IMAGE),
    14: MajorFormat(14, 202107181, 1300, "v13", 0xD10D, 88, _DBASE_13, _OLD_IMAGE,
                    toplevel_xid_block=True),
    15: MajorFormat(15, 202209061, 1300, "v13", 0xD110, 88, _DBASE_15, _NEW_IMAGE,
                    custom_rmgrs=True, toplevel_xid_block=True),
    16: MajorFormat(16, 202307071, 1300, "v13", 0xD113, 88, _DBASE_15, _NEW_IMAGE,
                    custom_rmgrs=True, toplevel_xid_block=True),
    17: MajorFormat(17, 202406281, 1700, "v17", 0xD116, 88, _DBASE_15, _NEW_IMAGE,
                    custom_rmgrs=True, toplevel_xid_block=True, transaction_timeout=True,
                    wal_summaries=True),
    18: MajorFormat(18, 202506291, 1800, "v18", 0xD118, 88, _DBASE_15, _NEW_IMAGE,
                    custom_rmgrs=True, toplevel_xid_block=True, transaction_timeout=True,
                    wal_summaries=True),
}

SUPPORTED_MAJORS = tuple(sorted(FORMATS))
_BY_VERSIONS = {(f.control_version, f.catversion): f for f in FORMATS.values()}


def format_for(control_version: int, catversion: int, what: str = "cluster") -> MajorFormat:
    """The row for a cluster identified by its pg_control and catalog versions."""
    try:
        return _BY_VERSIONS[(control_version, catversion)]
    except KeyError:
        raise ControlFileError(
            "%s has pg_control version %d and catalog version %d, which is not a "
            "PostgreSQL major this collection supports (%s)."
            % (what, control_version, catversion,
               ", ".join(str(m) for m in SUPPORTED_MAJORS)),
            code="unsupported_version") from None
