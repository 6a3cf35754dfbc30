# -*- coding: utf-8 -*-
# Copyright: pgops.rewind developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""WAL positions (LSNs) and the names of the files that hold them.

LSNs are plain ints (they are compared and added in hot loops); these helpers
convert them to and from PostgreSQL's text form and to segment file names.
"""

from __future__ import annotations

import re

from ..errors import RewindError

XLOG_BLCKSZ = 8192
SHORT_PAGE_HEADER = 24
LONG_PAGE_HEADER = 40
INVALID_LSN = 0

_LSN_RE = re.compile(r"^\s*([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})\s*$")
_SEGMENT_RE = re.compile(r"^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})$")


def format_lsn(lsn):
    """The X/X text form PostgreSQL prints (upper-case hex, no padding)."""
    return "%X/%X" % (lsn >> 32, lsn & 0xFFFFFFFF)


def parse_lsn(text):
    match = _LSN_RE.match(text or "")
    if not match:
        raise RewindError("%r is not a WAL location (expected X/X)" % (text,), code="bad_lsn")
    return (int(match.group(1), 16) << 32) | int(match.group(2), 16)


def maxalign(n):
    return (n + 7) & ~7


def segments_per_xlogid(seg_size):
    return 0x100000000 // seg_size


def segment_name(tli, segno, seg_size):
    per_id = segments_per_xlogid(seg_size)
    return "%08X%08X%08X" % (tli, segno // per_id, segno % per_id)


def parse_segment_name(name, seg_size):
    """(timeline, segment number) of a 24-hex-digit WAL file name, or None."""
    match = _SEGMENT_RE.match(name)
    if not match:
        return None
    tli, log, seg = (int(g, 16) for g in match.groups())
    return tli, log * segments_per_xlogid(seg_size) + seg


def history_file_name(tli):
    return "%08X.history" % tli


def page_header_size(lsn, seg_size):
    """Size of the header of the page holding `lsn` (long at a segment start)."""
    return LONG_PAGE_HEADER if (lsn - lsn % XLOG_BLCKSZ) % seg_size == 0 else SHORT_PAGE_HEADER


def first_record_position(lsn, seg_size):
    """An LSN at a page start means the first record on that page, after the header."""
    if lsn % XLOG_BLCKSZ == 0:
        return lsn + page_header_size(lsn, seg_size)
    return lsn


def last_record_end(insert_lsn, seg_size):
    """Where the last inserted record ends, given where the next one will start.

    PostgreSQL reports its insert position as the next record's start, which is past
    the page header when the last record filled its page exactly. Nothing ends inside
    a page header, and a standby only ever receives and replays up to a record's end:
    a minimum recovery point set 24 (or 40) bytes into a fresh page is reached only
    once the primary writes again, and an idle primary may never do so."""
    if insert_lsn % XLOG_BLCKSZ == page_header_size(insert_lsn, seg_size):
        return insert_lsn - insert_lsn % XLOG_BLCKSZ
    return insert_lsn
