"""Broken WAL gives a clear error naming the segment and the position, never a crash.

One real PostgreSQL 15 cluster writes WAL over several segments; each test damages
a copy of it the way disks, operators and archives do, then reads it as a rewind
would (from a start point to a known end point).
"""

import os
import shutil
import struct

import pytest

from ansible_collections.pgops.rewind.plugins.module_utils.errors import MissingWalError, WalError
from ansible_collections.pgops.rewind.plugins.module_utils.pg.lsn import segment_name
from support.bed import Bed
from support.walread import reader_for

SEG = 16 << 20


@pytest.fixture(scope="module")
def wal_template(tmp_path_factory):
    bed = Bed("bad_wal_template")
    try:
        node = bed.cluster("node", 15).init()
        node.start()
        node.sql("CREATE TABLE t (id int, pad text)")
        node.checkpoint()
        start = node.scalar("SELECT pg_current_wal_insert_lsn()::text")
        for _unused in range(3):
            node.sql("INSERT INTO t SELECT g, repeat('x', 500) FROM generate_series(1, 20000) g")
            node.sql("SELECT pg_switch_wal()")
        node.sql("SELECT pg_logical_emit_message(true, 'spanning', repeat('y', 40000))")
        node.stop()
        dest = tmp_path_factory.mktemp("wal") / "pgdata"
        os.makedirs(dest / "global")
        shutil.copy(node.datadir / "global" / "pg_control", dest / "global")
        shutil.copytree(node.datadir / "pg_wal", dest / "pg_wal")
    finally:
        bed.close()
    reader = reader_for(str(dest))
    first = reader.first_record_from(int(start.split("/")[0], 16) << 32 | int(start.split("/")[1], 16))
    records = list(reader.records(first))
    reader.close()
    return dest, first, records[-1].end_lsn, records


@pytest.fixture
def wal(wal_template, tmp_path):
    src, start, end, records = wal_template
    dest = tmp_path / "pgdata"
    shutil.copytree(src, dest)
    return dest, start, end, records


def _read(datadir, start, end):
    reader = reader_for(str(datadir))
    try:
        return sum(1 for _unused in reader.records(start, end))
    finally:
        reader.close()


def _middle_segment(datadir, start, end):
    segno = (start // SEG + end // SEG) // 2
    assert start // SEG < segno < end // SEG
    return segno, datadir / "pg_wal" / segment_name(1, segno, SEG)


def _poke(path, offset, data):
    with open(path, "r+b") as handle:
        handle.seek(offset)
        handle.write(data)


def test_intact_copy_reads(wal):
    datadir, start, end, records = wal
    assert _read(datadir, start, end) == len(records)
    assert end // SEG - start // SEG >= 3


def test_truncated_segment(wal):
    datadir, start, end, _unused = wal
    _segno, path = _middle_segment(datadir, start, end)
    os.truncate(path, SEG // 2)
    with pytest.raises(WalError) as err:
        _read(datadir, start, end)
    assert err.value.code == "wal_segment_size" and path.name in str(err.value)


def test_zero_filled_page(wal):
    datadir, start, end, _unused = wal
    segno, path = _middle_segment(datadir, start, end)
    _poke(path, 5 * 8192, bytes(8192))
    with pytest.raises(WalError) as err:
        _read(datadir, start, end)
    assert err.value.code == "wal_corrupt"
    assert "zero-filled page" in str(err.value) and path.name in str(err.value)
    assert "%X/%X" % ((segno * SEG + 5 * 8192) >> 32, (segno * SEG + 5 * 8192) & 0xFFFFFFFF) \
        in str(err.value)


def test_wrong_page_magic(wal):
    datadir, start, end, _unused = wal
    _segno, path = _middle_segment(datadir, start, end)
    _poke(path, 3 * 8192, struct.pack("<H", 0xD10D))     # PostgreSQL 14's magic
    with pytest.raises(WalError) as err:
        _read(datadir, start, end)
    assert "invalid magic number D10D" in str(err.value) and path.name in str(err.value)


def test_page_from_another_timeline(wal):
    datadir, start, end, _unused = wal
    _segno, path = _middle_segment(datadir, start, end)
    _poke(path, 7 * 8192 + 4, struct.pack("<I", 2))
    with pytest.raises(WalError) as err:
        _read(datadir, start, end)
    assert "page of timeline 2" in str(err.value) and path.name in str(err.value)


def test_segment_of_another_cluster(wal):
    datadir, start, end, _unused = wal
    _segno, path = _middle_segment(datadir, start, end)
    _poke(path, 24, struct.pack("<Q", 12345))            # xlp_sysid of the long header
    with pytest.raises(WalError) as err:
        _read(datadir, start, end)
    assert "belongs to database system 12345" in str(err.value)


def test_missing_segment_in_the_middle(wal):
    datadir, start, end, _unused = wal
    _segno, path = _middle_segment(datadir, start, end)
    path.unlink()
    with pytest.raises(MissingWalError) as err:
        _read(datadir, start, end)
    assert err.value.code == "wal_missing"
    assert path.name in str(err.value) and "restore_command" in err.value.hint


def test_record_checksum(wal):
    datadir, start, end, records = wal
    victim = records[len(records) // 2]
    segno, offset = divmod(victim.lsn + 30, SEG)
    path = datadir / "pg_wal" / segment_name(1, segno, SEG)
    with open(path, "rb") as handle:
        handle.seek(offset)
        byte = handle.read(1)
    _poke(path, offset, bytes([byte[0] ^ 0xFF]))
    with pytest.raises(WalError) as err:
        _read(datadir, start, end)
    assert "incorrect record checksum" in str(err.value)


def test_record_cut_at_end_of_wal_is_the_end_not_a_crash(wal):
    """Reading to the end of valid WAL: a record whose rest never reached disk ends it."""
    datadir, start, end, records = wal
    big = next(r for r in reversed(records) if r.tot_len > 3 * 8192)
    cut = big.lsn + 2 * 8192 - big.lsn % 8192        # wipe from the page after next on
    segno, offset = divmod(cut, SEG)
    path = datadir / "pg_wal" / segment_name(1, segno, SEG)
    _poke(path, offset, bytes(SEG - offset))
    reader = reader_for(str(datadir))
    got = list(reader.records(start))
    assert got[-1].lsn < big.lsn and got[-1].end_lsn <= big.lsn
    assert reader.end_of_wal is not None and "zero-filled page" in reader.end_of_wal.reason
    with pytest.raises(WalError):                   # but a rewind that must reach `end` fails
        _read(datadir, start, end)
