"""Rewind benchmark: our rewind against native pg_rewind and pg_basebackup, one cluster, one run.

    make bench                       (or .cache/venv/bin/python bench/rewind_bench.py)
    .cache/venv/bin/python bench/rewind_bench.py --scale 150 --divergence 1 --pgbench-seconds 30
    .cache/venv/bin/python bench/rewind_bench.py --scaling

On PostgreSQL 15 (Debian: native pg_rewind and pg_basebackup at hand) it builds a
primary of the chosen size (pgbench scale; 150 is about 2.2 GB), a streaming standby,
promotes the standby, diverges the old primary (UPDATE of `--divergence` percent of
pgbench_accounts in one key range, then a `--pgbench-seconds` pgbench run) and stops it,
snapshots the diverged target once and restores the snapshot before each timed run of:

  ours (libpq source)      the engine (same code path as the module), --source-server
  native --source-server   PostgreSQL 15's pg_rewind
  ours (local source)      the engine with the new primary stopped, --source-pgdata
  native --source-pgdata   pg_rewind likewise
  pg_basebackup            a full re-clone (-X stream -c fast)

For each: wall time, bytes read from the source, bytes written (write() calls of the
process tree), WAL scanned, peak RSS, and the ratio to native pg_rewind. Every rewind
is checked by starting the target as a standby and comparing all tables.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests"), str(REPO / ".cache" / "src"), str(REPO / "bench")]

from measure import measure  # noqa: E402
from support.cluster import Cluster, chown_tree, run_pg  # noqa: E402
from support.collection import ensure_installed  # noqa: E402
from support.compare import compare  # noqa: E402
from support.env import CACHE, COLLECTIONS_PATH, VENV_PYTHON, debian_tool, \
    run_as_kwargs  # noqa: E402

MAJOR = 15
SETTINGS = {"wal_keep_size": "'1GB'", "max_wal_size": "'4GB'", "checkpoint_timeout": "'30min'",
            "shared_buffers": "'256MB'"}


def _pgbench(node, *args):
    run_pg([debian_tool("pgbench"), "-h", "127.0.0.1", "-p", node.port, "-U", "postgres",
            *args, "postgres"], timeout=7200)


def build(home: Path, scale: int, divergence: float, seconds: int, rows: int = 0) -> dict:
    """The diverged pair, cached: {home, snapshot, target, source} as paths and ports."""
    state_file = home / "bench.json"
    if state_file.exists():
        state = json.loads(state_file.read_text())
        if Path(state["snapshot"]).is_dir():
            return state
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    os.chmod(home, 0o755)
    primary = Cluster("primary", MAJOR, home)
    base = CACHE / "bench" / ("base-s%d" % scale)       # the loaded cluster, for every run
    if not (base / "PG_VERSION").exists():
        shutil.rmtree(base, ignore_errors=True)
        primary.init(checksums=False, wal_log_hints=True, fsync=True, settings=SETTINGS)
        primary.start()
        print("[bench] loading pgbench scale %d ..." % scale, flush=True)
        _pgbench(primary, "-i", "-s", str(scale), "-q")
        primary.stop()
        subprocess.run(["cp", "-a", str(primary.datadir), str(base)], check=True)
    else:
        primary._make_home()
        subprocess.run(["cp", "-a", str(base), str(primary.datadir)], check=True)
        primary.write_node_settings()
    primary.start()
    primary.checkpoint()
    print("[bench] building the standby ...", flush=True)
    standby = primary.create_standby("standby")
    primary.wait_for_replay(standby)
    standby.promote()
    standby.checkpoint()
    rows = rows or int(scale * 100000 * divergence / 100)
    print("[bench] diverging: %d rows updated, pgbench %d s ..." % (rows, seconds), flush=True)
    primary.sql("UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid <= %s", (rows,))
    if seconds:
        _pgbench(primary, "-n", "-c", "4", "-j", "2", "-T", str(seconds))
        _pgbench(standby, "-n", "-c", "2", "-j", "2", "-T", str(max(1, seconds // 3)))
    primary.stop()
    # Reading the new primary later (verification) must not write WAL: set every hint
    # bit now, so each contender finds the source exactly as the others did.
    standby.sql("VACUUM")
    standby.checkpoint()
    snapshot = home / "snapshot"
    subprocess.run(["cp", "-a", str(primary.datadir), str(snapshot)], check=True)
    state = {"home": str(home), "snapshot": str(snapshot), "scale": scale,
             "divergence": 100.0 * rows / (scale * 100000), "rows": rows, "seconds": seconds,
             "target": {"datadir": str(primary.datadir), "port": primary.port},
             "source": {"datadir": str(standby.datadir), "port": standby.port}}
    state_file.write_text(json.dumps(state, indent=2))
    standby.stop()
    return state


def _nodes(state):
    home = Path(state["home"])
    target, source = Cluster("primary", MAJOR, home), Cluster("standby", MAJOR, home)
    target.port, source.port = state["target"]["port"], state["source"]["port"]
    return target, source


def restore_target(state, target):
    shutil.rmtree(target.datadir)
    subprocess.run(["cp", "-a", state["snapshot"], str(target.datadir)], check=True)


def _as_pg():
    return dict(run_as_kwargs(), cwd="/tmp",
                env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": "/tmp",
                     "PYTHONPATH": str(COLLECTIONS_PATH)})


def run_ours(target, source, local: bool) -> dict:
    params = {"target_pgdata": str(target.datadir), "sync": True}
    if local:
        params["source_pgdata"] = str(source.datadir)
    else:
        params["source_server"] = source.conninfo()
    row = measure([VENV_PYTHON, "-m", "ansible_collections.pgops.rewind.plugins.module_utils.cli",
                   "rewind", "--json", "-"], json.dumps(params), **_as_pg())
    result = json.loads(row["stdout"])
    assert row["rc"] == 0, row["stdout"][-3000:] + row["stderr"][-3000:]
    row.update(fetched=result["bytes_fetched"], wal=result["wal_bytes_scanned"],
               phases=result["duration_s"], files=result["files"],
               identical=result.get("files_identical"), blocks=result["blocks_copied"],
               progress=result.get("progress_overhead"))
    return row


def run_native(target, source, local: bool) -> dict:
    cmd = [debian_tool("pg_rewind"), "-D", target.datadir, "-P"]
    cmd += ["--source-pgdata", source.datadir] if local else ["--source-server", source.conninfo()]
    row = measure(cmd, **_as_pg())
    assert row["rc"] == 0, row["stderr"][-3000:]
    copied = re.findall(r"(\d+)/(\d+) kB \(100%\) copied", row["stderr"])
    row["fetched"] = int(copied[-1][1]) * 1024 if copied else None
    row["wal"] = None
    return row


def run_basebackup(state, source) -> dict:
    dest = Path(state["home"]) / "basebackup"
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(mode=0o700)
    chown_tree(dest)
    row = measure([debian_tool("pg_basebackup"), "-D", dest, "-h", "127.0.0.1", "-p",
                   source.port, "-U", "postgres", "-X", "stream", "-c", "fast"], **_as_pg())
    assert row["rc"] == 0, row["stderr"][-3000:]
    row["fetched"] = int(subprocess.run(["du", "-sb", str(dest)], capture_output=True, check=True,
                                        text=True).stdout.split()[0])
    row["wal"] = None
    shutil.rmtree(dest, ignore_errors=True)
    return row


def verify(target, source, restart_source: bool) -> bool:
    """The rewound target follows the source and equals it (native rewinds copy the
    source's postgresql.conf: the target gets its own port back first)."""
    target.write_node_settings()
    target.make_standby_of(source)
    chown_tree(target.datadir)
    if restart_source:
        source.start()
    target.start()
    try:
        source.wait_for_replay(target, timeout=600)
        return compare(source, target).equal
    finally:
        target.stop()


def _fmt_bytes(value):
    return "-" if value is None else "%.0f MB" % (value / 1e6)


def run_suite(state, checks=True) -> dict:
    target, source = _nodes(state)
    target.kill()                   # left over from an interrupted run
    if not source.is_alive():
        source.start()
    rows = {}
    for name, local, runner in (("ours (libpq source)", False, run_ours),
                                ("native --source-server", False, run_native),
                                ("ours (local source)", True, run_ours),
                                ("native --source-pgdata", True, run_native)):
        if local and source.is_alive():
            source.stop()
        if not local and not source.is_alive():
            source.start()
        restore_target(state, target)
        print("[bench] %s ..." % name, flush=True)
        rows[name] = runner(target, source, local)
        if checks:
            rows[name]["verified"] = verify(target, source, restart_source=local)
            if local:
                source.stop()
    if not source.is_alive():
        source.start()
    print("[bench] pg_basebackup ...", flush=True)
    rows["pg_basebackup"] = run_basebackup(state, source)
    source.stop()
    restore_target(state, target)
    return rows


def report(state, rows) -> None:
    size = int(subprocess.run(["du", "-sb", state["snapshot"]], capture_output=True, check=True,
                              text=True).stdout.split()[0])
    print()
    print("Rewind benchmark: PostgreSQL %d, pgbench scale %d (cluster %.2f GB), %d rows (%.2f %%) "
          "of pgbench_accounts updated + %d s pgbench on the old primary"
          % (MAJOR, state["scale"], size / 1e9, state.get("rows", 0), state["divergence"],
             state["seconds"]))
    print("%-24s %8s %9s %10s %10s %9s %9s %9s" % ("", "wall s", "vs native", "read src",
                                                   "written", "WAL read", "peak RSS",
                                                   "verified"))
    for name, row in rows.items():
        native = rows["native --source-pgdata" if "local" in name or "pgdata" in name
                      else "native --source-server"]
        print("%-24s %8.1f %8.2fx %10s %10s %9s %6.0f MB %9s" % (
            name, row["seconds"], row["seconds"] / native["seconds"], _fmt_bytes(row["fetched"]),
            _fmt_bytes(row["written"]), _fmt_bytes(row["wal"]), row["peak_rss_mb"],
            {True: "equal", False: "DIFFERENT"}.get(row.get("verified"), "-")))
    base = rows["pg_basebackup"]["seconds"]
    for name in ("ours (libpq source)", "ours (local source)"):
        print("%s: %.1fx faster than pg_basebackup; %d blocks, files %s, %s identical files "
              "not copied; phases %s" % (
                  name, base / rows[name]["seconds"], rows[name]["blocks"], rows[name]["files"],
                  rows[name]["identical"], rows[name]["phases"]))
        overhead = rows[name].get("progress") or {}
        print("  progress file upkeep: %.4f s over %s updates (%.3f %% of the run)" % (
            overhead.get("seconds", 0), overhead.get("updates", 0),
            100.0 * overhead.get("seconds", 0) / rows[name]["seconds"]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--scale", type=int, default=150, help="pgbench scale (150 ~ 2.2 GB)")
    parser.add_argument("--divergence", type=float, default=1.0,
                        help="percent of pgbench_accounts updated on the old primary")
    parser.add_argument("--pgbench-seconds", type=int, default=30)
    parser.add_argument("--scaling", choices=["divergence", "size"],
                        help="divergence: 0.1/1/10 %% of a 2.2 GB table; size: the same 70,000 "
                             "rows on a 1 GB and a 4 GB table")
    parser.add_argument("--keep", action="store_true", help="keep the clusters afterwards")
    args = parser.parse_args()
    ensure_installed()
    runs = [(args.scale, args.divergence, args.pgbench_seconds, 0)]
    if args.scaling == "divergence":
        runs = [(150, 0.1, 0, 0), (150, 1.0, 0, 0), (150, 10.0, 0, 0)]
    elif args.scaling == "size":
        runs = [(70, 0, 0, 70000), (280, 0, 0, 70000)]
    results = REPO / "bench" / "results"
    results.mkdir(exist_ok=True)
    for scale, divergence, seconds, rows in runs:
        name = "rewind-s%d-d%s-t%d-r%d" % (scale, divergence, seconds, rows)
        home = CACHE / "bench" / name
        state = build(home, scale, divergence, seconds, rows)
        outcome = run_suite(state)
        report(state, outcome)
        (results / (name + ".json")).write_text(json.dumps(
            {k: {kk: vv for kk, vv in v.items() if kk not in ("stdout", "stderr")}
             for k, v in outcome.items()}, indent=2))
        if not args.keep:             # a few GB each: the disk would not hold them all
            shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
