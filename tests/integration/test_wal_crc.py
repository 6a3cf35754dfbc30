"""Record checksums and the changed-block scan on real WAL of every major: each CRC-32C
implementation (the optional C package, the system's libext2fs, pure Python) accepts
every record PostgreSQL wrote, and the scan finds exactly the blocks the full decoder
finds in the fully CRC-checked records, whichever implementation it runs with."""

import os
import struct
import subprocess
import sys

import pytest

from ansible_collections.pgops.rewind.plugins.module_utils.pg import crc32c
from ansible_collections.pgops.rewind.plugins.module_utils.errors import WalError
from ansible_collections.pgops.rewind.plugins.module_utils.pg.lsn import format_lsn, segment_name
from ansible_collections.pgops.rewind.plugins.module_utils.wal.record import decode_record
from ansible_collections.pgops.rewind.plugins.module_utils.wal.scan import (
    scan_changes, scan_changes_parallel)
from support.env import REPO
from support.walread import first_record, read_records, reader_for

IMPLEMENTATIONS = ("c", "ext2fs", "python")


def _workload(node):
    """Full-page images (plain, with holes, compressed), one-block and multi-block
    records, records over several pages and segments, file-level records."""
    node.sql("CREATE TABLE t (id int PRIMARY KEY, pad text) WITH (fillfactor = 60)")
    node.sql("INSERT INTO t SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 20000) g")
    node.checkpoint()
    node.sql("UPDATE t SET pad = 'u1' WHERE id % 5 = 0")
    node.sql("CREATE INDEX t_pad ON t (pad)")
    node.sql("SET wal_compression = on; UPDATE t SET pad = 'u2' WHERE id % 7 = 0")
    node.sql("DELETE FROM t WHERE id % 11 = 0")
    node.sql("VACUUM t")
    node.sql("CREATE DATABASE other")
    node.sql("SELECT pg_logical_emit_message(true, 'big', repeat('z', 3000000))")
    node.sql("SELECT pg_switch_wal()")
    node.sql("INSERT INTO t VALUES (-1, 'after switch')")


def _as_sets(blocks):
    return {tuple(key): set(blocks.blocks(key)) for key in blocks.segments()}


def test_every_implementation_and_the_scan_agree_with_the_checked_decode(bed, major):
    node = bed.cluster("node", major).init(checksums=True)
    node.start()
    _workload(node)
    node.stop()
    datadir = str(node.datadir)
    reader = reader_for(datadir)
    reader.use_crc("c")
    start = first_record(datadir, reader)
    reference, count, images = {}, 0, 0
    loaded = {name: crc32c.load(name)[1] for name in IMPLEMENTATIONS}
    for raw in read_records(reader, start):        # every record CRC-checked (C package)
        count += 1
        data = bytes(raw.data)
        stored = struct.unpack_from("<I", data, 20)[0]
        for name, record_crc in loaded.items():
            assert record_crc(data, 0, raw.tot_len) == stored, (name, raw)
        for block in decode_record(raw, reader.fmt).blocks:
            images += block.has_image
            if block.fork == 0:
                reference.setdefault((block.spc, block.db, block.rel, block.blkno // 131072),
                                     set()).add(block.blkno % 131072)
        end = raw.end_lsn
    assert reader.end_of_wal is not None and count > 20000 and images > 1000
    assert sum(len(blocks) for blocks in reference.values()) > 1000

    for name in IMPLEMENTATIONS:
        reader.use_crc(name)
        changes = scan_changes(reader, start, end, reader.fmt, 131072)
        assert changes.records == count, name
        assert _as_sets(changes.blocks) == reference, name
    parallel = scan_changes_parallel(lambda: reader_for(datadir), start, end, reader.fmt,
                                     131072, 2)
    assert parallel.records == count and _as_sets(parallel.blocks) == reference

    # A damaged record is still refused by every implementation, named by its LSN: one
    # over several pages (inside its full-page image), and a short one in the middle of
    # a page, with records after it on that page (libext2fs checks a page's records in
    # one call, after visiting them: the first wrong one must still be the one named).
    records = list(read_records(reader, start))
    seg = reader.seg_size
    reader.close()
    long_victim = [raw for raw in records if raw.tot_len > 8000][5]
    inside_a_page = [raw for here, raw, after in zip(records, records[1:], records[2:])
                     if 40 < raw.tot_len < 200 and here.tot_len < 200 and after.tot_len < 200
                     and here.lsn // 8192 == raw.lsn // 8192 == after.lsn // 8192]
    short_victim = inside_a_page[len(inside_a_page) // 2]
    for victim, position in ((long_victim, long_victim.lsn + 4000),
                             (short_victim, short_victim.lsn + 30)):
        if position % 8192 < 64:                        # not in a page header
            position += 64
        _flip(datadir, seg, position)
        for name, workers in [(name, 1) for name in IMPLEMENTATIONS] + [("ext2fs", 2)]:
            with pytest.raises(WalError) as err:
                _scan(datadir, name, start, end, workers)
            assert "incorrect record checksum at %s" % format_lsn(victim.lsn) \
                in str(err.value), (name, workers, str(err.value))
        _flip(datadir, seg, position)                   # repaired for the next victim
    assert _scan(datadir, "ext2fs", start, end, 1).records == count


def _reader_using(datadir, implementation):
    reader = reader_for(datadir)
    reader.use_crc(implementation)
    return reader


def _scan(datadir, implementation, start, end, workers):
    if workers > 1:
        fmt = reader_for(datadir).fmt
        return scan_changes_parallel(lambda: _reader_using(datadir, implementation), start,
                                     end, fmt, 131072, workers)
    reader = _reader_using(datadir, implementation)
    try:
        return scan_changes(reader, start, end, reader.fmt, 131072)
    finally:
        reader.close()


def _flip(datadir, seg, position):
    """Flip the lowest bit of the WAL byte at LSN `position` (timeline 1)."""
    segno, offset = divmod(position, seg)
    path = os.path.join(datadir, "pg_wal", segment_name(1, segno, seg))
    with open(path, "r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([byte[0] ^ 0x01]))


@pytest.mark.parametrize("forced", IMPLEMENTATIONS)
def test_implementation_can_be_forced(forced):
    code = ("from ansible_collections.pgops.rewind.plugins.module_utils.pg import crc32c; "
            "print(crc32c.IMPLEMENTATION, crc32c.crc32c(b'123456789'))")
    env = dict(os.environ, PGOPS_REWIND_CRC32C=forced,
               PYTHONPATH=str(REPO / ".cache" / "src"))
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True,
                         capture_output=True, text=True).stdout.split()
    assert out == [forced, str(0xE3069283)]
    env["PGOPS_REWIND_CRC32C"] = "nonsense"
    failed = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                            text=True, check=False)
    assert failed.returncode != 0 and "PGOPS_REWIND_CRC32C=nonsense" in failed.stderr
