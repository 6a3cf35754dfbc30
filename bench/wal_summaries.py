"""Changed blocks from WAL summaries against the WAL scan, on the same WAL, in one run.

    .cache/venv/bin/python bench/wal_summaries.py --wal-mb 1024

Builds (once, cached under .cache/bench/) a PostgreSQL 17 cluster with
summarize_wal = on holding at least --wal-mb of pgbench WAL after a checkpoint, with a
checkpoint every 30 s of load (summaries end at checkpoints) and some load after the
last one (the stretch no summary covers, as on a real old primary), then times, best of
--repeat runs each, in a process of its own that reports its peak RSS:
  - the full changed-block scan of the range (what a rewind does without summaries);
  - the changed blocks from the summaries plus the scan of the uncovered tail;
  - the same with the pure-Python CRC-32C (a host without the crc32c package).
It checks that the summaries' blocks contain every block the scan found below the
files' sizes (the only ones a rewind copies block by block).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests"), str(REPO / ".cache" / "src")]

from support.cluster import Cluster, run_pg  # noqa: E402
from support.env import CACHE, debian_tool  # noqa: E402

WORK = CACHE / "bench" / "walsummaries"
MAJOR = 17

CHILD = r"""
import json, os, resource, sys, time
sys.path[:0] = %(paths)r
datadir, start, end, mode = %(datadir)r, %(start)d, %(end)d, %(mode)r
if mode.endswith("-pycrc"):     # chosen at import: WAL records and summaries alike
    os.environ["PGOPS_REWIND_CRC32C"] = "python"
from support.walread import reader_for
from ansible_collections.pgops.rewind.plugins.module_utils.wal import summary as walsummary
from ansible_collections.pgops.rewind.plugins.module_utils.pg.controlfile import read_control_file
from ansible_collections.pgops.rewind.plugins.module_utils.pg.timeline import TimelineEntry
from ansible_collections.pgops.rewind.plugins.module_utils.wal.scan import scan_changes
control = read_control_file(os.path.join(datadir, "global", "pg_control"))
t0, c0 = time.perf_counter(), time.process_time()
if mode == "scan":
    reader = reader_for(datadir)
    changes = scan_changes(reader, start, end, control.fmt, control.relseg_size)
    reader.close()
else:
    changes = walsummary.changes_from_summaries(
        datadir, control, [TimelineEntry(1, 0, None)], start, end, lambda: reader_for(datadir))
elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
blocks = {}
for segment in changes.blocks.segments():
    path = os.path.join(datadir, segment.path(control.fmt.tablespace_dir))
    size = os.path.getsize(path) // 8192 if os.path.exists(path) else 0
    blocks["%%d/%%d/%%d/%%d" %% tuple(segment)] = [b for b in changes.blocks.blocks(segment) if b < size]
print(json.dumps({"seconds": elapsed, "cpu": cpu, "records": changes.records,
                  "blocks": len(changes.blocks), "wal_bytes": changes.wal_bytes,
                  "summaries": len(getattr(changes, "summaries", [])),
                  "usable": blocks,
                  "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def prepare(wal_mb: int) -> tuple:
    """A stopped PostgreSQL 17 cluster with summaries and at least wal_mb of WAL after
    the checkpoint at `start`; cached between runs."""
    meta = WORK / "range.json"
    if meta.exists():
        info = json.loads(meta.read_text())
        if info["end"] - info["start"] >= wal_mb << 20 and Path(info["datadir"]).is_dir():
            return info["datadir"], info["start"], info["end"]
    subprocess.run(["rm", "-rf", str(WORK)], check=True)
    WORK.mkdir(parents=True)
    os.chmod(WORK, 0o755)
    node = Cluster("walsummaries", MAJOR, WORK)
    node.init(settings={"summarize_wal": "on", "wal_keep_size": "'64GB'",
                        "max_wal_size": "'64GB'", "checkpoint_timeout": "'1d'"})
    node.start()
    try:
        pgbench = [debian_tool("pgbench"), "-h", "127.0.0.1", "-p", node.port, "-U", "postgres"]
        node.checkpoint()
        start = int(node.scalar("SELECT checkpoint_lsn - '0/0'::pg_lsn FROM pg_control_checkpoint()"))
        run_pg(pgbench + ["-i", "-s", "30", "-q", "postgres"], timeout=7200)
        node.checkpoint()
        while node.scalar("SELECT pg_current_wal_insert_lsn() - '0/0'::pg_lsn") - start \
                < wal_mb << 20:
            run_pg(pgbench + ["-c", "4", "-j", "2", "-T", "30", "postgres"], timeout=7200)
            node.checkpoint()
        redo = node.scalar("SELECT redo_lsn::text FROM pg_control_checkpoint()")
        node.wait_until(lambda: node.scalar(
            "SELECT summarized_lsn >= %s::pg_lsn FROM pg_get_wal_summarizer_state()", (redo,)),
            timeout=600, what="summaries up to the last checkpoint")
        run_pg(pgbench + ["-c", "4", "-j", "2", "-T", "5", "postgres"], timeout=7200)
    finally:
        node.stop()
    from support.walread import reader_for
    reader = reader_for(str(node.datadir))
    last = [None]

    def visit(lsn, end_lsn, *rest):
        last[0] = end_lsn
    reader.walk(start, None, visit)
    reader.close()
    meta.write_text(json.dumps({"datadir": str(node.datadir), "start": start, "end": last[0]}))
    return str(node.datadir), start, last[0]


def run(datadir, start, end, mode) -> dict:
    code = CHILD % {"paths": sys.path[:2], "datadir": datadir, "start": start, "end": end,
                    "mode": mode}
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True).stdout
    return json.loads(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--wal-mb", type=int, default=1024, help="WAL in the range (MB)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; the best counts")
    args = parser.parse_args()
    datadir, start, end = prepare(args.wal_mb)
    mb = (end - start) / 1e6
    rows = {}
    for mode in ("scan", "summaries", "summaries-pycrc"):
        rows[mode] = min((run(datadir, start, end, mode) for _unused in range(args.repeat)),
                         key=lambda r: r["seconds"])
    scan, summaries = rows["scan"], rows["summaries"]
    for key, blocks in scan["usable"].items():
        missing = set(blocks) - set(summaries["usable"].get(key, []))
        assert not missing, "summaries miss %d blocks of %s" % (len(missing), key)
    print("Changed blocks of %.0f MB of WAL (PostgreSQL %d, pgbench, summarize_wal = on), "
          "best of %d" % (mb, MAJOR, args.repeat))
    print("%-40s %8s %8s %10s %9s %10s %9s" % (
        "", "wall s", "CPU s", "WAL read", "records", "blocks", "peak RSS"))
    for name, mode in (("WAL scan (crc32c package)", "scan"),
                       ("summaries + tail scan (crc32c package)", "summaries"),
                       ("summaries + tail scan (pure-Python CRC)", "summaries-pycrc")):
        row = rows[mode]
        print("%-40s %8.2f %8.2f %7.0f MB %9d %10d %6.0f MB" % (
            name, row["seconds"], row["cpu"], row["wal_bytes"] / 1e6, row["records"],
            row["blocks"], row["maxrss_mb"]))
    print("summary files read: %d; every block the scan found below the files' sizes is "
          "among the summaries' blocks" % summaries["summaries"])


if __name__ == "__main__":
    main()
