# -*- coding: utf-8 -*-
# Copyright: pgops.rewind developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""CRC-32C (Castagnoli), the checksum of WAL records and of pg_control.

`crc32c(data, value)` continues from `value`, the result of an earlier call, so
a record split over pages is checksummed piece by piece; `record_crc(buf, off,
tot_len)` is the checksum of the WAL record at buf[off:off + tot_len] (its payload,
then its header up to xl_crc), the value xl_crc must hold.

Three implementations give the same answers, the fastest available is used:
  - "c": PyPI's optional `crc32c` package (thousands of MB/s);
  - "ext2fs": `ext2fs_crc32c_le` of the system's libext2fs, through ctypes. The
    library ships with e2fsprogs, which Debian, Ubuntu and RHEL-family systems
    install everywhere, so a node with nothing added still checksums at C speed
    (about 1.5 GB/s, plus ~0.7 us per call);
  - "python": table-driven pure Python (about 20 MB/s), when neither is there.
PGOPS_REWIND_CRC32C=c|ext2fs|python forces one (tests and benchmarks); a forced
implementation that is not available is an ImportError, never a silent fallback.
"""

from __future__ import annotations

import ctypes
import os

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


def _register(value, data):
    """The bare CRC register after `data` (no inversion at either end)."""
    table = _TABLE
    for byte in data:
        value = table[(value ^ byte) & 0xFF] ^ (value >> 8)
    return value


def _word_reaching(value):
    """The 4 bytes that take the CRC register from 0 to `value`: the register update
    over 4 bytes is a linear bijection of 32-bit values (Gaussian elimination over
    GF(2) on the images of the 32 unit words)."""
    basis = {}                              # leading bit -> (image, word)
    for bit in range(32):
        image, word = _register(0, (1 << bit).to_bytes(4, "little")), 1 << bit
        for lead in range(31, -1, -1):
            if not image >> lead & 1:
                continue
            if lead not in basis:
                basis[lead] = (image, word)
                break
            image, word = image ^ basis[lead][0], word ^ basis[lead][1]
    word = 0
    for lead in range(31, -1, -1):
        if value >> lead & 1:
            value, word = value ^ basis[lead][0], word ^ basis[lead][1]
    return word.to_bytes(4, "little")


# Many records checked in one call (the libext2fs reader's batches): a record's payload
# followed by its whole header, xl_crc included, leaves the register at RECORD_RESIDUE
# exactly when xl_crc is right (feeding the register's own bytes zeroes it, so what is
# left is the register after four 0xFF bytes from 0); RECORD_RESET then takes it back to
# the initial ~0, ready for the next record. A batch of (payload, header, RECORD_RESET)
# triples ends at ~0 when every record's CRC is right.
RECORD_RESIDUE = _register(0, b"\xff\xff\xff\xff")
RECORD_RESET = bytes(a ^ b for a, b in zip(_word_reaching(0xFFFFFFFF),
                                           RECORD_RESIDUE.to_bytes(4, "little")))


def crc32c_python(data, value=0):
    """Pure-Python CRC-32C; slow but dependency-free."""
    return _register(value ^ 0xFFFFFFFF, bytes(data)) ^ 0xFFFFFFFF


def _python_record_crc(buf, off, tot_len):
    return crc32c_python(buf[off:off + 20], crc32c_python(buf[off + 24:off + tot_len]))


def _load_c():
    from crc32c import crc32c as c_crc   # optional C implementation

    last = [None, None]       # the buffer of the previous call and a view of it

    def record_crc(buf, off, tot_len):
        if buf is not last[0]:
            if not isinstance(buf, bytes):     # only immutable buffers are remembered
                view = memoryview(buf)
                return c_crc(view[off:off + 20], c_crc(view[off + 24:off + tot_len]))
            last[0], last[1] = buf, memoryview(buf)
        view = last[1]
        return c_crc(view[off:off + 20], c_crc(view[off + 24:off + tot_len]))
    return c_crc, record_crc


def _ext2fs_update():
    """ext2fs_crc32c_le(crc, p, len) is the bare CRC register update (no inversion at
    either end, as ext4 uses it): CRC-32C(data, value) = f(~value, data) ^ ~0."""
    try:
        # PyDLL: called holding the GIL (a short computation; CDLL's release and
        # re-acquire of the GIL would cost more than the call)
        update = ctypes.PyDLL("libext2fs.so.2").ext2fs_crc32c_le
    except (OSError, AttributeError) as exc:
        raise ImportError("libext2fs.so.2 with ext2fs_crc32c_le: %s" % exc) from None
    update.restype = ctypes.c_uint32
    update.argtypes = (ctypes.c_uint32, ctypes.c_void_p, ctypes.c_size_t)
    return update


def bytes_address(buf: bytes) -> int:
    """Where an immutable bytes object's data lies (valid while `buf` is referenced)."""
    return ctypes.cast(buf, ctypes.c_void_p).value


def register_update(name):
    """For "ext2fs", the bare register update f(crc, address, length), so a reader can
    checksum records by address inside a buffer it holds (bytes_address), without a
    Python call per record: CRC-32C = f(f(~0, payload), header) ^ ~0. None otherwise."""
    return _ext2fs_update() if name == "ext2fs" else None


def _load_ext2fs():
    update = _ext2fs_update()
    last = [None, 0]          # the buffer of the previous call and its address

    def address(buf):
        """Address of an immutable bytes object's data (no copy): records are
        checksummed in place, many per buffer, so the last one is remembered."""
        if buf is not last[0]:
            last[0], last[1] = buf, bytes_address(buf)
        return last[1]

    def ext2fs_crc(data, value=0):
        if not isinstance(data, bytes):
            data = bytes(data)
        return update(value ^ 0xFFFFFFFF, data, len(data)) ^ 0xFFFFFFFF

    def record_crc(buf, off, tot_len):
        if not isinstance(buf, bytes):
            buf, off = bytes(memoryview(buf)[off:off + tot_len]), 0
        base = address(buf) + off
        return update(update(0xFFFFFFFF, base + 24, tot_len - 24), base, 20) ^ 0xFFFFFFFF
    return ext2fs_crc, record_crc


_LOADERS = {"c": _load_c, "ext2fs": _load_ext2fs,
            "python": lambda: (crc32c_python, _python_record_crc)}


def load(name):
    """(crc32c, record_crc) of one implementation; ImportError when it is not available."""
    return _LOADERS[name]()


def _best():
    forced = os.environ.get("PGOPS_REWIND_CRC32C")
    if forced:
        if forced not in _LOADERS:
            raise ImportError("PGOPS_REWIND_CRC32C=%s: not one of %s"
                              % (forced, ", ".join(_LOADERS)))
        return (forced,) + load(forced)
    for name in ("c", "ext2fs"):
        try:
            return (name,) + load(name)
        except ImportError:   # pragma: no cover - depends on the host
            continue
    return ("python",) + load("python")   # pragma: no cover - depends on the host


IMPLEMENTATION, crc32c, record_crc = _best()
