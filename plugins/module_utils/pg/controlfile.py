# -*- coding: utf-8 -*-
# Copyright: pgops.rewind developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""global/pg_control: reading it for every major 11-18, and writing an updated copy.

The layout of ControlFileData (and of the CheckPoint struct embedded in it) is a
table of (offset, struct format) per layout name; `versions.FORMATS` says which
layout a major uses. Every read verifies the CRC-32C; every write recomputes it.
"""

from __future__ import annotations

import struct
import time
from dataclasses import dataclass, fields
from typing import Optional

from .crc32c import crc32c
from .datadir import BLCKSZ
from ..errors import ControlFileError
from .lsn import XLOG_BLCKSZ, format_lsn
from .versions import MajorFormat, format_for

PG_CONTROL_FILE_SIZE = 8192
CONTROL_PATH = "global/pg_control"

# DBState
DB_STARTUP = 0
DB_SHUTDOWNED = 1
DB_SHUTDOWNED_IN_RECOVERY = 2
DB_SHUTDOWNING = 3
DB_IN_CRASH_RECOVERY = 4
DB_IN_ARCHIVE_RECOVERY = 5
DB_IN_PRODUCTION = 6
STATE_NAMES = {  # as pg_controldata prints them
    DB_STARTUP: "starting up",
    DB_SHUTDOWNED: "shut down",
    DB_SHUTDOWNED_IN_RECOVERY: "shut down in recovery",
    DB_SHUTDOWNING: "shutting down",
    DB_IN_CRASH_RECOVERY: "in crash recovery",
    DB_IN_ARCHIVE_RECOVERY: "in archive recovery",
    DB_IN_PRODUCTION: "in production",
}
CLEAN_STATES = (DB_SHUTDOWNED, DB_SHUTDOWNED_IN_RECOVERY)
WAL_LEVELS = {0: "minimal", 1: "replica", 2: "logical"}

_ALIGN = {"Q": 8, "q": 8, "d": 8, "I": 4, "i": 4, "?": 1, "32s": 1}
_SIZE = {"Q": 8, "q": 8, "d": 8, "I": 4, "i": 4, "?": 1, "32s": 32}


def _offsets(members):
    """(offset, format) of each member of a C struct laid out with natural alignment
    (x86-64 and arm64 ABI), plus the struct's size; nested structs are given as
    (name, (size, alignment))."""
    layout, offset, max_align = {}, 0, 1
    for name, fmt in members:
        size, align = fmt if isinstance(fmt, tuple) else (_SIZE[fmt], _ALIGN[fmt])
        offset = (offset + align - 1) & ~(align - 1)
        layout[name] = (offset, fmt)
        offset += size
        max_align = max(max_align, align)
    return layout, (offset + max_align - 1) & ~(max_align - 1)


# The CheckPoint struct per layout: 12 made nextXid a 64-bit FullTransactionId,
# 17 added wal_level in what used to be padding.
_CHECKPOINT_HEAD = [("redo", "Q"), ("timeline", "I"), ("prev_timeline", "I"),
                    ("full_page_writes", "?")]
_CHECKPOINT_TAIL = [("next_oid", "I"), ("next_multi", "I"), ("next_multi_offset", "I"),
                    ("oldest_xid", "I"), ("oldest_xid_db", "I"), ("oldest_multi", "I"),
                    ("oldest_multi_db", "I"), ("time", "q"), ("oldest_commit_ts_xid", "I"),
                    ("newest_commit_ts_xid", "I"), ("oldest_active_xid", "I")]
CHECKPOINT_LAYOUTS = {
    "v11": _offsets(_CHECKPOINT_HEAD + [("next_xid_epoch", "I"), ("next_xid32", "I")]
                    + _CHECKPOINT_TAIL),
    "v12": _offsets(_CHECKPOINT_HEAD + [("next_xid", "Q")] + _CHECKPOINT_TAIL),
    "v17": _offsets(_CHECKPOINT_HEAD + [("wal_level", "i"), ("next_xid", "Q")]
                    + _CHECKPOINT_TAIL),
}
_CHECKPOINT_LAYOUT_OF = {"v11": "v11", "v12": "v12", "v13": "v12", "v17": "v17", "v18": "v17"}


def _control_members(checkpoint, max_wal_senders, float4, char_signedness):
    """ControlFileData members in order. 12 added max_wal_senders, 13 dropped
    float4ByVal, 18 added default_char_signedness; CheckPoint grew in 12."""
    return (
        [("system_identifier", "Q"), ("control_version", "I"), ("catversion", "I"),
         ("state", "I"), ("time", "q"), ("checkpoint", "Q"),
         ("checkpoint_copy", (CHECKPOINT_LAYOUTS[checkpoint][1], 8)),
         ("unlogged_lsn", "Q"), ("min_recovery_point", "Q"), ("min_recovery_point_tli", "I"),
         ("backup_start_point", "Q"), ("backup_end_point", "Q"), ("backup_end_required", "?"),
         ("wal_level", "i"), ("wal_log_hints", "?"), ("max_connections", "i"),
         ("max_worker_processes", "i")]
        + ([("max_wal_senders", "i")] if max_wal_senders else [])
        + [("max_prepared_xacts", "i"), ("max_locks_per_xact", "i"),
           ("track_commit_timestamp", "?"), ("max_align", "I"), ("float_format", "d"),
           ("blcksz", "I"), ("relseg_size", "I"), ("xlog_blcksz", "I"), ("xlog_seg_size", "I"),
           ("name_data_len", "I"), ("index_max_keys", "I"), ("toast_max_chunk_size", "I"),
           ("loblksize", "I")]
        + ([("float4_by_val", "?")] if float4 else [])
        + [("float8_by_val", "?"), ("data_checksum_version", "I")]
        + ([("default_char_signedness", "?")] if char_signedness else [])
        + [("mock_authentication_nonce", "32s"), ("crc", "I")])


LAYOUTS = {
    name: _offsets(_control_members(*args))[0] for name, args in {
        "v11": ("v11", False, True, False),
        "v12": ("v12", True, True, False),
        "v13": ("v12", True, False, False),
        "v17": ("v17", True, False, False),
        "v18": ("v17", True, False, True),
    }.items()
}


@dataclass(frozen=True)
class CheckPoint:
    """The CheckPoint struct: main data of checkpoint records, also copied into pg_control."""

    redo: int
    timeline: int
    prev_timeline: int
    full_page_writes: bool
    next_xid: int           # full 64-bit xid (epoch << 32 | xid)
    next_oid: int
    next_multi: int
    next_multi_offset: int
    oldest_xid: int
    oldest_xid_db: int
    oldest_multi: int
    oldest_multi_db: int
    time: int
    oldest_commit_ts_xid: int
    newest_commit_ts_xid: int
    oldest_active_xid: int
    wal_level: Optional[int] = None   # 17+

    @classmethod
    def parse(cls, data, layout_name, offset=0):
        layout = CHECKPOINT_LAYOUTS[_CHECKPOINT_LAYOUT_OF[layout_name]][0]
        values = {name: struct.unpack_from("<" + fmt, data, offset + off)[0]
                  for name, (off, fmt) in layout.items()}
        if "next_xid32" in values:
            values["next_xid"] = (values.pop("next_xid_epoch") << 32) | values.pop("next_xid32")
        return cls(**values)


@dataclass(frozen=True)
class ControlFile:
    """The facts of one cluster's pg_control that a rewind needs (and a few more)."""

    fmt: MajorFormat
    raw: bytes
    system_identifier: int
    control_version: int
    catversion: int
    state: int
    time: int
    checkpoint: int
    checkpoint_copy: CheckPoint
    unlogged_lsn: int
    min_recovery_point: int
    min_recovery_point_tli: int
    backup_start_point: int
    backup_end_point: int
    backup_end_required: bool
    wal_level: int
    wal_log_hints: bool
    max_connections: int
    max_worker_processes: int
    max_wal_senders: Optional[int]
    max_prepared_xacts: int
    max_locks_per_xact: int
    track_commit_timestamp: bool
    max_align: int
    float_format: float
    blcksz: int
    relseg_size: int
    xlog_blcksz: int
    xlog_seg_size: int
    name_data_len: int
    index_max_keys: int
    toast_max_chunk_size: int
    loblksize: int
    float4_by_val: Optional[bool]
    float8_by_val: bool
    data_checksum_version: int
    default_char_signedness: Optional[bool]
    mock_authentication_nonce: bytes
    crc: int

    @property
    def major(self) -> int:
        return self.fmt.major

    @property
    def state_name(self) -> str:
        return STATE_NAMES.get(self.state, "unrecognized status code %d" % self.state)

    @property
    def cleanly_shut_down(self) -> bool:
        return self.state in CLEAN_STATES

    @property
    def checkpoint_timeline(self) -> int:
        return self.checkpoint_copy.timeline

    @property
    def timeline(self) -> int:
        """The timeline this cluster is on as far as pg_control can tell: the newer of
        the last checkpoint's and the minimum recovery point's (a standby replays past
        its last restartpoint; 16+ also records a promotion here at once)."""
        return max(self.checkpoint_copy.timeline, self.min_recovery_point_tli)

    @property
    def full_page_writes(self) -> bool:
        return self.checkpoint_copy.full_page_writes

    @property
    def protects_hint_bits(self) -> bool:
        """Hint-bit-only page changes are WAL-logged: the precondition of any rewind."""
        return self.data_checksum_version != 0 or self.wal_log_hints

    def summary(self) -> dict:
        """The facts an operator reads in a module result."""
        return {
            "pg_major": self.major,
            "system_identifier": str(self.system_identifier),
            "pg_control_version": self.control_version,
            "catalog_version": self.catversion,
            "state": self.state_name,
            "timeline": self.timeline,
            "checkpoint_lsn": format_lsn(self.checkpoint),
            "redo_lsn": format_lsn(self.checkpoint_copy.redo),
            "checkpoint_timeline": self.checkpoint_copy.timeline,
            "min_recovery_point": format_lsn(self.min_recovery_point),
            "min_recovery_point_timeline": self.min_recovery_point_tli,
            "data_checksums": self.data_checksum_version != 0,
            "wal_log_hints": self.wal_log_hints,
            "full_page_writes": self.full_page_writes,
            "wal_level": WAL_LEVELS.get(self.wal_level, str(self.wal_level)),
            "block_size": self.blcksz,
            "wal_segment_size": self.xlog_seg_size,
        }


def parse_control_file(data: bytes, what: str = CONTROL_PATH) -> ControlFile:
    """Parse and verify pg_control bytes; `what` names the file in error messages."""
    data = bytes(data)
    if len(data) != PG_CONTROL_FILE_SIZE:
        raise ControlFileError("%s has %d bytes; a pg_control file has %d."
                               % (what, len(data), PG_CONTROL_FILE_SIZE), code="control_size")
    control_version, catversion = struct.unpack_from("<II", data, 8)
    fmt = format_for(control_version, catversion, what)
    layout = LAYOUTS[fmt.control_layout]
    crc_offset = layout["crc"][0]
    stored_crc = struct.unpack_from("<I", data, crc_offset)[0]
    if crc32c(data[:crc_offset]) != stored_crc:
        raise ControlFileError(
            "%s is corrupt: its CRC-32C does not match its contents." % what,
            hint="Do not rewind this cluster; restore it from a backup or rebuild it.",
            code="control_crc")
    values = {name: struct.unpack_from("<" + f, data, off)[0]
              for name, (off, f) in layout.items() if name != "checkpoint_copy"}
    values["checkpoint_copy"] = CheckPoint.parse(data, fmt.control_layout,
                                                 layout["checkpoint_copy"][0])
    for optional in ("max_wal_senders", "float4_by_val", "default_char_signedness"):
        values.setdefault(optional, None)
    control = ControlFile(fmt=fmt, raw=data, **values)
    seg = control.xlog_seg_size
    if seg < (1 << 20) or seg > (1 << 30) or seg & (seg - 1):
        raise ControlFileError("%s names an invalid WAL segment size of %d bytes." % (what, seg),
                               code="control_segsize")
    if control.xlog_blcksz != XLOG_BLCKSZ or control.blcksz != BLCKSZ:
        raise ControlFileError(
            "%s describes a cluster built with block size %d / WAL block size %d; only "
            "%d is supported." % (what, control.blcksz, control.xlog_blcksz, BLCKSZ),
            code="unsupported_block_size")
    return control


def read_control_file(path: str) -> ControlFile:
    try:
        with open(path, "rb") as handle:
            data = handle.read(PG_CONTROL_FILE_SIZE + 1)
    except FileNotFoundError:
        raise ControlFileError("%s does not exist: this is not a PostgreSQL data directory." % path,
                               code="not_a_data_directory") from None
    except OSError as exc:
        raise ControlFileError("cannot read %s: %s" % (path, exc.strerror),
                               code="control_unreadable") from None
    return parse_control_file(data, path)


_CONTROL_FIELDS = {f.name for f in fields(ControlFile)}


def updated_control_file(base: ControlFile, **changes) -> bytes:
    """The bytes of `base` with top-level fields replaced, `time` set to now and a new CRC.

    Padding and unknown bytes are kept exactly as they were (the CRC covers them).
    """
    layout = LAYOUTS[base.fmt.control_layout]
    data = bytearray(base.raw)
    changes.setdefault("time", int(time.time()))
    for name, value in changes.items():
        offset, fmt = layout.get(name, (None, None))
        if not isinstance(fmt, str) or name == "crc" or name not in _CONTROL_FIELDS:
            raise ValueError("cannot update pg_control field %r" % name)
        struct.pack_into("<" + fmt, data, offset, value)
    crc_offset = layout["crc"][0]
    struct.pack_into("<I", data, crc_offset, crc32c(bytes(data[:crc_offset])))
    return bytes(data)
