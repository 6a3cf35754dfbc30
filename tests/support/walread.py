"""Reading a test cluster's WAL with the engine, and with pg_waldump as the oracle."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from ansible_collections.pgops.rewind.plugins.module_utils.pg.controlfile import read_control_file
from ansible_collections.pgops.rewind.plugins.module_utils.pg.lsn import parse_segment_name
from ansible_collections.pgops.rewind.plugins.module_utils.pg.timeline import history_of
from ansible_collections.pgops.rewind.plugins.module_utils.wal.reader import RawRecord, WalReader
from ansible_collections.pgops.rewind.plugins.module_utils.wal.segments import SegmentDirectory

from .cluster import run_pg
from .env import debian_tool


def _read_or_none(datadir):
    def read(relpath):
        try:
            with open(os.path.join(datadir, relpath), "rb") as handle:
                return handle.read()
        except FileNotFoundError:
            return None
    return read


def reader_for(datadir, timeline=None) -> WalReader:
    """A WalReader over a stopped (or running) cluster's own pg_wal."""
    control = read_control_file(os.path.join(datadir, "global", "pg_control"))
    history = history_of(timeline or control.timeline, _read_or_none(datadir), "cluster")
    seg = control.xlog_seg_size
    return WalReader(SegmentDirectory(os.path.join(datadir, "pg_wal"), seg), control.fmt, seg,
                     history, control.system_identifier)


def read_records(reader, start, end=None) -> list:
    """Every record from `start` (to `end`, or to the end of valid WAL: then the reason is
    in reader.end_of_wal), as RawRecords: the engine's walk, collected. The engine itself
    never holds more than one record; tests compare whole lists."""
    got = []

    def collect(*record):
        got.append(RawRecord.visited(*record))
    reader.walk(start, end, collect)
    return got


def first_record(datadir, reader) -> int:
    """LSN of the first complete record in the oldest segment of pg_wal."""
    segnos = [parsed[1] for parsed in (parse_segment_name(name, reader.seg_size)
                                       for name in os.listdir(os.path.join(datadir, "pg_wal")))
              if parsed]
    return reader.first_record_from(min(segnos) * reader.seg_size)


@dataclass(frozen=True)
class DumpedRecord:
    lsn: int
    prev: int
    rmgr: str
    tot_len: int
    xid: int
    blocks: tuple   # (block_id, spc, db, rel, fork, blkno)
    desc: str


_LINE = re.compile(r"^rmgr: (\S+)\s+len \(rec/tot\):\s*(\d+)/\s*(\d+), tx:\s*(\d+), "
                   r"lsn: ([0-9A-F]+)/([0-9A-F]+), prev ([0-9A-F]+)/([0-9A-F]+), desc: (.*)$")
_BLOCK = re.compile(r"blkref #(\d+): rel (\d+)/(\d+)/(\d+)(?: fork (\w+))? blk (\d+)")
_FORKS = {None: 0, "": 0, "main": 0, "fsm": 1, "vm": 2, "init": 3}


def pg_waldump(waldir, start: int, end: int, timeline: int = 1) -> list:
    """Records pg_waldump (Debian PostgreSQL 15) reports between start and end."""
    def fmt(lsn):
        return "%X/%X" % (lsn >> 32, lsn & 0xFFFFFFFF)
    proc = run_pg([debian_tool("pg_waldump"), "-p", waldir, "-t", str(timeline),
                   "-s", fmt(start), "-e", fmt(end)], check=False, timeout=600)
    if proc.returncode != 0:
        raise AssertionError("pg_waldump failed: %s" % proc.stderr[-2000:])
    records = []
    for line in proc.stdout.splitlines():
        match = _LINE.match(line)
        if not match:
            assert not line.startswith("rmgr:"), line
            continue
        g = match.groups()
        blocks = tuple((int(b[0]), int(b[1]), int(b[2]), int(b[3]), _FORKS[b[4]], int(b[5]))
                       for b in _BLOCK.findall(g[8]))
        records.append(DumpedRecord((int(g[4], 16) << 32) | int(g[5], 16),
                                    (int(g[6], 16) << 32) | int(g[7], 16), g[0], int(g[2]),
                                    int(g[3]), blocks, g[8]))
    return records
