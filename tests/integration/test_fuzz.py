"""Fuzzing the parsers with mutated real bytes (hypothesis, bounded): only the engine's
own clear errors come out -- never a hang, never another kind of exception."""

import io
import os
import shutil
import struct
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.pgops.rewind.plugins.module_utils.pg import controlfile as cf
from ansible_collections.pgops.rewind.plugins.module_utils.pg.crc32c import crc32c
from ansible_collections.pgops.rewind.plugins.module_utils.errors import RewindError, WalError
from ansible_collections.pgops.rewind.plugins.module_utils.pg.lsn import LONG_PAGE_HEADER, \
    SHORT_PAGE_HEADER, XLOG_BLCKSZ, segment_name
from ansible_collections.pgops.rewind.plugins.module_utils.pg.timeline import parse_history
from ansible_collections.pgops.rewind.plugins.module_utils.wal.reader import WalReader
from ansible_collections.pgops.rewind.plugins.module_utils.wal.record import decode_record, \
    file_event
from ansible_collections.pgops.rewind.plugins.module_utils.wal.scan import scan_changes
from support.bed import Bed
from support.walread import read_records, reader_for

FUZZ = settings(max_examples=150, deadline=5000, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow, HealthCheck.data_too_large])
SEG = 16 << 20


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    """pg_control of three majors and a WAL segment full of real records."""
    bed = Bed("fuzz_samples")
    controls, nodes = {}, {}
    try:
        for major in (11, 15, 18):
            node = nodes[major] = bed.cluster("n%d" % major, major).init()
            node.start()
            if major == 15:
                node.sql("CREATE TABLE t (id int PRIMARY KEY, v text)")
                node.sql("INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 5000) g")
                node.sql("UPDATE t SET v = 'x' WHERE id % 3 = 0")
                node.sql("CREATE DATABASE other")
                node.sql("SELECT pg_logical_emit_message(true, 'm', repeat('z', 30000))")
            node.stop()
            controls[major] = (node.datadir / "global" / "pg_control").read_bytes()
        dest = tmp_path_factory.mktemp("fuzz") / "pgdata"
        src = nodes[15].datadir
        os.makedirs(dest / "global")
        shutil.copy(src / "global" / "pg_control", dest / "global")
        shutil.copytree(src / "pg_wal", dest / "pg_wal")
    finally:
        bed.close()
    reader = reader_for(str(dest))
    first = min(int(n[8:], 16) for n in os.listdir(dest / "pg_wal") if len(n) == 24)
    start = reader.first_record_from(first * SEG)
    records = [(r.lsn, bytes(r.data)) for r in read_records(reader, start)]
    reader.close()
    segment = (dest / "pg_wal" / segment_name(1, first, SEG)).read_bytes()
    return {"controls": controls, "segment": segment, "segno": first, "start": start,
            "records": records, "fmt": reader.fmt, "sysid": reader.system_identifier,
            "history": reader.history}


def _with_crc(data: bytearray, layout_name: str) -> bytes:
    crc_offset = cf.LAYOUTS[layout_name]["crc"][0]
    struct.pack_into("<I", data, crc_offset, crc32c(bytes(data[:crc_offset])))
    return bytes(data)


@FUZZ
@given(st.data())
def test_control_file_parser(real, data):
    major = data.draw(st.sampled_from(sorted(real["controls"])))
    raw = bytearray(real["controls"][major])
    layout = cf.format_for(*struct.unpack_from("<II", raw, 8)).control_layout
    for _unused in range(data.draw(st.integers(1, 8))):
        offset = data.draw(st.integers(0, 320))
        raw[offset] = data.draw(st.integers(0, 255))
    fix_crc = data.draw(st.booleans())
    blob = _with_crc(raw, layout) if fix_crc else bytes(raw)
    if data.draw(st.booleans()):
        blob = blob[:data.draw(st.integers(0, len(blob)))]
    try:
        control = cf.parse_control_file(blob, "fuzzed pg_control")
        control.summary()
    except RewindError:
        pass


@FUZZ
@given(st.one_of(st.text(max_size=400),
                 st.lists(st.tuples(st.integers(0, 2 ** 33), st.integers(0, 2 ** 64 - 1),
                                    st.text(max_size=20)), max_size=6).map(
                     lambda rows: "".join("%d\t%X/%X\t%s\n" % (t, lsn >> 32, lsn & 0xFFFFFFFF, r)
                                          for t, lsn, r in rows))),
       st.integers(1, 2 ** 32 - 1))
def test_history_parser(text, tli):
    try:
        entries = parse_history(text, tli, "fuzzed.history")
        assert entries[-1].tli == tli
    except RewindError:
        pass


class _OneSegment:
    """A WAL directory holding one (mutated) segment."""

    def __init__(self, segno, data):
        self.segno, self.data, self.path = segno, data, "fuzz"

    def open(self, tli, segno):
        return io.BytesIO(self.data) if segno == self.segno else None


@FUZZ
@given(st.data())
def test_wal_reader_on_mutated_segments(real, data):
    segment = bytearray(real["segment"])
    used = max(lsn + len(rec) for lsn, rec in real["records"]) - real["segno"] * SEG
    for _unused in range(data.draw(st.integers(1, 6))):
        kind = data.draw(st.sampled_from(["byte", "zero", "copy"]))
        offset = data.draw(st.integers(0, used))
        if kind == "byte":
            segment[offset] = data.draw(st.integers(0, 255))
        elif kind == "zero":
            length = data.draw(st.integers(1, 20000))
            segment[offset:offset + length] = bytes(len(segment[offset:offset + length]))
        else:
            other = data.draw(st.integers(0, used))
            segment[offset:offset + 64] = segment[other:other + 64]
    reader = WalReader(_OneSegment(real["segno"], bytes(segment)), real["fmt"], SEG,
                       real["history"], real["sysid"])
    started = time.monotonic()
    walked = read_records(reader, real["start"])            # to the end of valid WAL
    _random_access_agrees(reader, walked, reader.end_of_wal, real["start"])
    try:
        end = real["records"][-1][0]
        scan_changes(reader, real["start"], end + len(real["records"][-1][1]) + 7 & ~7,
                     real["fmt"], 131072)
    except RewindError:
        pass
    assert time.monotonic() - started < 20


def _random_access_agrees(reader, walked, stopped, start):
    """The backward search's random access (record_at) reads a record as the scan's
    walk does: every record the walk read, alike; the record the walk stopped at, if a
    record check refused it, refused for the same reason -- except a prev-link that
    points back to the wrong record, which only a reading in sequence can know."""
    for record in walked[::max(1, len(walked) // 20)] + walked[-1:]:
        again = reader.record_at(record.lsn)
        assert (again.lsn, again.end_lsn, bytes(again.data)) == \
            (record.lsn, record.end_lsn, bytes(record.data))
    position = walked[-1].end_lsn if walked else start
    if position % XLOG_BLCKSZ == 0:
        position += LONG_PAGE_HEADER if position % SEG == 0 else SHORT_PAGE_HEADER
    if stopped is None or stopped.lsn != position or "(expected" in stopped.reason:
        return      # a page or a continuation was refused, not the record itself
    try:
        reader.record_at(position)
    except WalError as exc:
        assert exc.message.endswith(": %s." % stopped.reason), (exc.message, stopped.reason)
    else:
        raise AssertionError("the walk refused the record at %X (%s), random access read it"
                             % (position, stopped.reason))


@FUZZ
@given(st.data())
def test_record_decoder_on_mutated_records(real, data):
    """Mutate the record's body and fix its CRC, so the decoder itself meets garbage."""
    lsn, rec = data.draw(st.sampled_from(real["records"]))
    body = bytearray(rec)
    for _unused in range(data.draw(st.integers(1, 6))):
        position = data.draw(st.integers(24, max(24, len(body) - 1)))
        if position < len(body):
            body[position] = data.draw(st.integers(0, 255))

    class Raw:
        pass
    raw = Raw()
    raw.lsn, raw.end_lsn, raw.data, raw.tot_len = lsn, lsn + len(body), bytes(body), len(body)
    raw.xid, raw.prev = struct.unpack_from("<IQ", body, 4)
    raw.info, raw.rmid = body[16], body[17]
    try:
        record = decode_record(raw, real["fmt"])
        file_event(record, real["fmt"])
    except RewindError:
        pass
