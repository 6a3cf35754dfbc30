# -*- coding: utf-8 -*-
# Copyright: pgops.rewind developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""CRC-32C (Castagnoli), the checksum of WAL records and of pg_control.

`crc32c(data, value)` continues from `value`, the result of an earlier call, so
a record split over pages is checksummed piece by piece. The C implementation
from PyPI's `crc32c` package is used when it is installed (thousands of MB/s);
otherwise a table-driven pure-Python version (a few MB/s) gives the same answers.
"""

from __future__ import annotations

_POLY = 0x82F63B78  # reflected Castagnoli polynomial


def _make_table():
    table = []
    for byte in range(256):
        crc = byte
        for _bit in range(8):
            crc = (crc >> 1) ^ _POLY if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE = _make_table()


def crc32c_python(data, value=0):
    """Pure-Python CRC-32C; slow but dependency-free."""
    crc = value ^ 0xFFFFFFFF
    table = _TABLE
    for byte in bytes(data):
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


try:
    from crc32c import crc32c as _accelerated  # optional C implementation
except ImportError:  # pragma: no cover - depends on the host
    _accelerated = None

if _accelerated is not None:
    crc32c = _accelerated
    IMPLEMENTATION = "c"
else:  # pragma: no cover - depends on the host
    crc32c = crc32c_python
    IMPLEMENTATION = "python"
