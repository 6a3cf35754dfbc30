"""Broken WAL gives a clear error naming the segment and the position, never a crash.

One real PostgreSQL 15 cluster writes WAL over several segments; each test damages
a copy of it the way disks, operators and archives do, then reads it as a rewind
would (from a start point to a known end point). A record that fails one of the
record checks is refused alike by the scan and by the random access of the backward
search (WalReader.record_at), whether it lies within a page or spans pages.
"""

import os
import shutil
import struct

import pytest

from ansible_collections.pgops.rewind.plugins.module_utils.errors import MissingWalError, WalError
from ansible_collections.pgops.rewind.plugins.module_utils.pg import crc32c
from ansible_collections.pgops.rewind.plugins.module_utils.pg.lsn import format_lsn, segment_name
from ansible_collections.pgops.rewind.plugins.module_utils.wal.scan import scan_changes
from support.bed import Bed
from support.walread import read_records, reader_for

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
    records = read_records(reader, first)
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
        return len(read_records(reader, start, end))
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
    got = read_records(reader, start)
    assert got[-1].lsn < big.lsn and got[-1].end_lsn <= big.lsn
    assert reader.end_of_wal is not None and "zero-filled page" in reader.end_of_wal.reason
    with pytest.raises(WalError):                   # but a rewind that must reach `end` fails
        _read(datadir, start, end)


# --- one record check failing: the scan and random access refuse it alike ---------

PAGE = 8192


def _byte_positions(lsn, length):
    """(segment number, offset) of each of a record's bytes: page headers skipped."""
    positions, pos = [], lsn
    while len(positions) < length:
        if pos % PAGE == 0:
            pos += 40 if pos % SEG == 0 else 24
        positions.append(divmod(pos, SEG))
        pos += 1
    return positions


def _write_record(datadir, lsn, data, fix_crc):
    """Write a record's bytes back where they lie, with a CRC that matches them or not."""
    data = bytearray(data)
    if fix_crc:
        struct.pack_into("<I", data, 20, crc32c.record_crc(bytes(data), 0, len(data)))
    for index, (segno, offset) in enumerate(_byte_positions(lsn, len(data))):
        _poke(datadir / "pg_wal" / segment_name(1, segno, SEG), offset, data[index:index + 1])


def _victim(records, kind):
    """A record from the middle of the WAL: within one page, spanning pages with its
    header on the first, or with its header itself split over two pages."""
    def shape(record):
        page_off = record.lsn % PAGE
        if page_off > PAGE - 24:
            return "header_split"
        return "in_page" if page_off + record.tot_len <= PAGE else "spanning"
    middle = records[len(records) // 3:]
    return next(r for r in middle if shape(r) == kind and r.rmid != 0)


def _damage(data, damage, lsn, fmt):
    """The record's bytes with one check broken; (bytes, fix the CRC, reason)."""
    if damage == "resource_manager":
        data[17] = fmt.max_builtin_rmid + 1
        return data, True, "invalid resource manager ID %d" % (fmt.max_builtin_rmid + 1)
    if damage == "prev_link_forward":
        struct.pack_into("<Q", data, 8, lsn)
        return data, True, "record with incorrect prev-link"
    if damage == "length_short":
        struct.pack_into("<I", data, 0, 20)
        return data, False, "invalid record length 20"
    if damage == "length_huge":
        struct.pack_into("<I", data, 0, 0x7FFFFFF0)
        return data, False, "invalid record length %d" % 0x7FFFFFF0
    assert damage == "checksum"
    data[-1] ^= 0x01
    return data, False, "incorrect record checksum"


def _both_refusals(datadir, start, end, lsn):
    """The scan's refusal (alike with the C package's CRC, checked record by record, and
    libext2fs's, checked a page of records at a time) and random access's."""
    scans = []
    for implementation in ("c", "ext2fs"):
        reader = reader_for(str(datadir))
        reader.use_crc(implementation)
        try:
            with pytest.raises(WalError) as scanned:
                scan_changes(reader, start, end, reader.fmt, 131072)
            scans.append(scanned.value)
            with pytest.raises(WalError) as at_random:
                reader.record_at(lsn)
        finally:
            reader.close()
    assert scans[0].message == scans[1].message and scans[0].details == scans[1].details
    return scans[0], at_random.value


def _reason(error):
    """The reader's reason, without the context that says which way it was reading."""
    return error.message.split(": ", 1)[1]


def _assert_refused_alike(scanned, at_random, reason, lsn):
    assert type(scanned) is type(at_random) is WalError
    assert scanned.code == at_random.code == "wal_corrupt"
    assert scanned.details["lsn"] == at_random.details["lsn"] == lsn
    assert _reason(scanned) == _reason(at_random)
    assert _reason(scanned).startswith(reason), _reason(scanned)


@pytest.mark.parametrize("kind", ["in_page", "spanning", "header_split"])
@pytest.mark.parametrize("damage", ["resource_manager", "prev_link_forward", "length_short",
                                    "length_huge", "checksum"])
def test_a_record_failing_a_check_is_refused_alike_by_the_scan_and_random_access(
        wal, kind, damage):
    datadir, start, end, records = wal
    victim = _victim(records, kind)
    reader = reader_for(str(datadir))
    intact = reader.record_at(victim.lsn)        # read at random, it is the scan's record
    assert (bytes(intact.data), intact.end_lsn) == (bytes(victim.data), victim.end_lsn)
    fmt = reader.fmt
    reader.close()
    data, fix_crc, reason = _damage(bytearray(victim.data), damage, victim.lsn, fmt)
    _write_record(datadir, victim.lsn, data, fix_crc)
    scanned, at_random = _both_refusals(datadir, start, end, victim.lsn)
    _assert_refused_alike(scanned, at_random, reason, format_lsn(victim.lsn))


@pytest.mark.parametrize("kind", ["spanning", "header_split"])
def test_a_broken_continuation_is_refused_alike_by_the_scan_and_random_access(wal, kind):
    datadir, start, end, records = wal
    victim = _victim(records, kind)
    next_page = victim.lsn - victim.lsn % PAGE + PAGE
    segno, offset = divmod(next_page, SEG)
    _poke(datadir / "pg_wal" / segment_name(1, segno, SEG), offset + 16, struct.pack("<I", 7))
    scanned, at_random = _both_refusals(datadir, start, end, victim.lsn)
    _assert_refused_alike(scanned, at_random, "invalid continuation length 7",
                          format_lsn(next_page))


def test_a_wrong_backward_prev_link_is_refused_by_the_scan_only(wal):
    """The one check that differs by design: read in sequence, a record must point back
    exactly to the one before; read at random (the backward search follows prev-links),
    only backwards, as PostgreSQL's reader does when it has no previous record."""
    datadir, start, end, records = wal
    victim = _victim(records, "spanning")
    data = bytearray(victim.data)
    struct.pack_into("<Q", data, 8, victim.prev - 8)
    _write_record(datadir, victim.lsn, data, fix_crc=True)
    reader = reader_for(str(datadir))
    try:
        with pytest.raises(WalError) as scanned:
            scan_changes(reader, start, end, reader.fmt, 131072)
        assert "incorrect prev-link" in str(scanned.value) and "expected" in str(scanned.value)
        assert reader.record_at(victim.lsn).prev == victim.prev - 8
    finally:
        reader.close()


def test_a_segment_switch_ends_where_the_scan_and_random_access_say(wal):
    """After an XLOG_SWITCH the rest of the segment is padding: both ways of reading
    give the record the same end, the next segment's start, where the next record is."""
    datadir, _start, _end, records = wal
    switches = [i for i, r in enumerate(records) if r.rmid == 0 and r.info & 0xF0 == 0x40]
    assert len(switches) == 3
    reader = reader_for(str(datadir))
    try:
        for index in switches:
            switch = records[index]
            assert switch.end_lsn % SEG == 0 and switch.end_lsn > switch.lsn
            assert reader.record_at(switch.lsn).end_lsn == switch.end_lsn
            assert records[index + 1].lsn == switch.end_lsn + 40     # after the long header
    finally:
        reader.close()
