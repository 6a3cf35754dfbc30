"""WAL scan throughput: our reader against pg_waldump --stats, on the same WAL, in one run.

    make bench-wal            (or: .cache/venv/bin/python bench/wal_scan.py --wal-mb 1024)

Builds (once, cached under .cache/bench/) a PostgreSQL 15 cluster holding at least
--wal-mb of WAL of pgbench transactions after a checkpoint (the WAL a rewind reads:
full-page images first, then ever more small records), then times, best of --repeat
runs each:
  - pg_waldump --stats over the range (the C reader: page and record validation, CRC);
  - our WAL reader alone (validated records, CRC-checked);
  - our full changed-block scan (what a rewind does: reader + block references).
Each of ours runs in its own process, which reports its peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests"), str(REPO / ".cache" / "src")]

from support.cluster import Cluster, run_pg  # noqa: E402
from support.env import CACHE, debian_tool  # noqa: E402

WORK = CACHE / "bench" / "walscan"
WORKLOAD = "pgbench -s 50 transactions after a checkpoint"

CHILD = r"""
import json, resource, sys, time
if %(crc)r == "python":
    sys.modules["crc32c"] = None     # hide the optional C package (import fails)
sys.path[:0] = %(paths)r
from ansible_collections.pgops.rewind.plugins.module_utils.pg import crc32c as crc_module
from support.walread import reader_for
from ansible_collections.pgops.rewind.plugins.module_utils.wal.scan import scan_changes
reader = reader_for(%(datadir)r)
start, end, mode = %(start)d, %(end)d, %(mode)r
t0, c0 = time.perf_counter(), time.process_time()
if mode == "reader":
    count = [0]
    def visit(*record):
        count[0] += 1
    reader.walk(start, end, visit)
    records = count[0]
    blocks = 0
else:   # "scan", or "discarded": the same pass also counting every record's work
    changes = scan_changes(reader, start, end, reader.fmt, 131072,
                           count_from=start if mode == "discarded" else None)
    records, blocks = changes.records, len(changes.blocks)
elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
print(json.dumps({"seconds": elapsed, "cpu": cpu, "records": records, "blocks": blocks,
                  "crc": crc_module.IMPLEMENTATION,
                  "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def prepare(wal_mb: int) -> tuple:
    """A stopped cluster with at least wal_mb of WAL after `start`; cached between runs."""
    meta = WORK / "range.json"
    if meta.exists():
        info = json.loads(meta.read_text())
        if info["end"] - info["start"] >= wal_mb << 20 and Path(info["datadir"]).is_dir() \
                and info.get("workload") == WORKLOAD:
            return info["datadir"], info["start"], info["end"]
    subprocess.run(["rm", "-rf", str(WORK)], check=True)
    WORK.mkdir(parents=True)
    os.chmod(WORK, 0o755)
    node = Cluster("walscan", 15, WORK)
    node.init(settings={"wal_keep_size": "'64GB'", "max_wal_size": "'64GB'",
                        "checkpoint_timeout": "'1d'"})
    node.start()
    try:
        pgbench = [debian_tool("pgbench"), "-h", "127.0.0.1", "-p", node.port, "-U", "postgres"]
        run_pg(pgbench + ["-i", "-s", "50", "-q", "postgres"], timeout=7200)
        node.checkpoint()     # as after a fork: full-page images first, then small records
        start = node.scalar("SELECT pg_current_wal_insert_lsn() - '0/0'::pg_lsn")
        while node.scalar("SELECT pg_current_wal_insert_lsn() - '0/0'::pg_lsn") - start \
                < wal_mb << 20:
            run_pg(pgbench + ["-c", "4", "-j", "2", "-T", "30", "postgres"], timeout=7200)
        node.checkpoint()
    finally:
        node.stop()
    sys.path.insert(0, str(REPO / ".cache" / "src"))
    from support.walread import reader_for
    reader = reader_for(str(node.datadir))
    first = reader.first_record_from(int(start))
    last = [None]

    def visit(lsn, end_lsn, *rest):
        last[0] = end_lsn
    reader.walk(first, None, visit)
    last = last[0]
    reader.close()
    meta.write_text(json.dumps({"datadir": str(node.datadir), "start": first, "end": last,
                                "workload": WORKLOAD}))
    return str(node.datadir), first, last


def ours(datadir, start, end, mode, crc) -> dict:
    """One run of ours in a process of its own. `crc` picks the CRC-32C implementation:
    "auto" (the best installed), or one forced through PGOPS_REWIND_CRC32C; "python"
    also hides the optional C package, as on a node where it is not installed."""
    code = CHILD % {"paths": sys.path[:2], "datadir": datadir, "start": start, "end": end,
                    "mode": mode, "crc": crc}
    env = dict(os.environ)
    env.pop("PGOPS_REWIND_CRC32C", None)
    if crc != "auto":
        env["PGOPS_REWIND_CRC32C"] = crc
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True, env=env).stdout
    return json.loads(out)


def waldump(datadir, start, end) -> dict:
    def fmt(lsn):
        return "%X/%X" % (lsn >> 32, lsn & 0xFFFFFFFF)
    t0, c0 = time.perf_counter(), _children_cpu()
    out = subprocess.run([str(debian_tool("pg_waldump")), "--stats", "-p",
                          os.path.join(datadir, "pg_wal"), "-s", fmt(start), "-e", fmt(end)],
                         check=True, capture_output=True, text=True).stdout
    elapsed, cpu = time.perf_counter() - t0, _children_cpu() - c0
    total = [line for line in out.splitlines() if line.startswith("Total")][0]
    return {"seconds": elapsed, "cpu": cpu, "records": int(total.split()[1])}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--wal-mb", type=int, default=1024, help="WAL to scan (MB)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; the best counts")
    parser.add_argument("--crc", default="auto", choices=("auto", "c", "ext2fs", "python"),
                        help="CRC-32C implementation of ours (default: the best installed)")
    args = parser.parse_args()
    datadir, start, end = prepare(args.wal_mb)
    mb = (end - start) / 1e6
    for _unused in range(2):   # warm the page cache so every contender reads from memory
        waldump(datadir, start, end)
    native = min((waldump(datadir, start, end) for _unused in range(args.repeat)),
                 key=lambda r: r["seconds"])
    reader = min((ours(datadir, start, end, "reader", args.crc) for _unused in range(args.repeat)),
                 key=lambda r: r["seconds"])
    scan = min((ours(datadir, start, end, "scan", args.crc) for _unused in range(args.repeat)),
               key=lambda r: r["seconds"])
    counted = min((ours(datadir, start, end, "discarded", args.crc)
                   for _unused in range(args.repeat)), key=lambda r: r["seconds"])
    assert reader["records"] == scan["records"] == native["records"], (reader, scan, native)
    assert counted["blocks"] == scan["blocks"]
    print("WAL scan: %.0f MB, %d records (PostgreSQL 15, pgbench), best of %d, CRC-32C: %s"
          % (mb, native["records"], args.repeat, scan["crc"]))
    print("%-26s %8s %8s %12s %8s %10s %9s" % (
        "", "wall s", "CPU s", "records/s", "MB/s", "vs native", "peak RSS"))
    for name, row in (("pg_waldump --stats", native), ("ours: reader", reader),
                      ("ours: changed-block scan", scan),
                      ("ours: scan + discarded", counted)):
        print("%-26s %8.2f %8.2f %12.0f %8.1f %9.1fx %9s" % (
            name, row["seconds"], row["cpu"], row["records"] / row["seconds"],
            mb / row["seconds"], row["seconds"] / native["seconds"],
            "%.0f MB" % row["maxrss_mb"] if "maxrss_mb" in row else "-"))
    print("changed blocks found: %d; the discarded-work report costs %.0f %% of the scan's CPU"
          % (scan["blocks"], 100.0 * (counted["cpu"] - scan["cpu"]) / scan["cpu"]))


if __name__ == "__main__":
    main()
