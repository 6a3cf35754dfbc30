"""Rewind benchmark: our rewind against native pg_rewind and pg_basebackup, one cluster, one run.

    make bench                       (or .cache/venv/bin/python bench/rewind_bench.py)
    .cache/venv/bin/python bench/rewind_bench.py --scale 150 --divergence 1 --pgbench-seconds 30
    .cache/venv/bin/python bench/rewind_bench.py --scaling goals|divergence|size
    .cache/venv/bin/python bench/rewind_bench.py --scaling goals --quick     (a small try)

On PostgreSQL 15 (Debian: native pg_rewind and pg_basebackup at hand) it builds a
primary of the chosen size (pgbench scale; 150 is about 2.2 GB), a streaming standby,
promotes the standby, diverges the old primary (UPDATE of `--divergence` percent of
pgbench_accounts in one key range, then a `--pgbench-seconds` pgbench run) and stops it,
(with `--common-seconds`, the failover point: first that long an unthrottled pgbench on
the primary after its last checkpoint, streamed to the standby before the promotion, so
that much WAL is history both sides share and the rewind skips it;
`--scaling goals` runs it beside the 1 % and 10 % points),
snapshots the diverged target once and restores the snapshot before each timed run of
(the page cache dropped before each, when run as root):

  native --source-server   PostgreSQL 15's pg_rewind
  engine, crc32c           the engine through its CLI (the module's code path without
                           Ansible), in the test venv that has the crc32c package
  engine, psycopg2 only    the same with the system Python and Debian's python3-psycopg2,
                           nothing else: the node a DBA actually has
  module via Ansible       `ansible -m pgops.rewind.pg_rewind`, become su, system Python:
                           the engine plus Ansible's start-up
  clone fallback           the engine's clone (fallback: clone, clone_when: always)
  native --source-pgdata   pg_rewind from the stopped new primary's data directory
  engine, local source     the engine likewise (--source-pgdata)
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


def build(home: Path, scale: int, divergence: float, seconds: int, rows: int = 0,
          common_seconds: int = 0) -> dict:
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
    # The old primary keeps its WAL back to the last common checkpoint through the
    # divergence and its shutdown checkpoint, without which native pg_rewind (no archive)
    # cannot find it; the new primary keeps the fork's WAL through the VACUUM below
    # (an image of every page left without hint bits: over 1 GB at the failover point).
    for node in (primary, standby):
        node.write_node_settings({"wal_keep_size": "'4GB'"})
        node.sql("SELECT pg_catalog.pg_reload_conf()")
    if common_seconds:
        # The failover point: the primary's last checkpoint, then busy with no checkpoint
        # in between (checkpoint_timeout and max_wal_size are raised), all of it replayed
        # by the standby before it is promoted.
        primary.checkpoint()
        print("[bench] common history: pgbench %d s after the last checkpoint ..."
              % common_seconds, flush=True)
        _pgbench(primary, "-n", "-c", "4", "-j", "2", "-T", str(common_seconds))
        primary.wait_for_replay(standby, timeout=1800)
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
             "common_seconds": common_seconds,
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


# The node a DBA actually has: the distribution's Python and psycopg2, nothing else (no
# crc32c package). scripts/setup.sh installs Debian's python3-psycopg2 for it.
SYSTEM_PYTHON = "/usr/bin/python3"


def _params(target, source, local: bool) -> dict:
    params = {"target_pgdata": str(target.datadir), "sync": True}
    if local:
        params["source_pgdata"] = str(source.datadir)
    else:
        params["source_server"] = source.conninfo()
    return params


def _engine_row(row: dict, result: dict) -> dict:
    row.update(fetched=result["bytes_fetched"], wal=result["wal_bytes_scanned"],
               wal_skipped=result.get("wal_bytes_common_skipped"),
               written_by_kind=result.get("bytes_written"),
               connections=result.get("fetch_connections"),
               phases=result["duration_s"], files=result["files"],
               identical=result.get("files_identical"), blocks=result["blocks_copied"],
               progress=result.get("progress_overhead"),
               scan_ahead=result.get("wal_scan_ahead"))
    return row


def run_ours(target, source, local: bool, python=VENV_PYTHON) -> dict:
    """The engine as a process through its CLI: the module's code path without Ansible."""
    row = measure([python, "-m", "ansible_collections.pgops.rewind.plugins.module_utils.cli",
                   "rewind", "--json", "-"], json.dumps(_params(target, source, local)),
                  **_as_pg())
    assert row["rc"] == 0, row["stdout"][-3000:] + row["stderr"][-3000:]
    return _engine_row(row, json.loads(row["stdout"]))


def run_ours_system_python(target, source, local: bool) -> dict:
    return run_ours(target, source, local, python=SYSTEM_PYTHON)


def run_clone(target, source, local: bool) -> dict:
    """The clone fallback forced (clone_when: always): a base backup through the engine's
    own connection, to compare with pg_basebackup. The old directory it keeps aside is
    removed afterwards (disk)."""
    params = dict(_params(target, source, local), fallback="clone", clone_when="always")
    row = measure([VENV_PYTHON, "-m", "ansible_collections.pgops.rewind.plugins.module_utils.cli",
                   "rewind", "--json", "-"], json.dumps(params), **_as_pg())
    assert row["rc"] == 0, row["stdout"][-3000:] + row["stderr"][-3000:]
    result = json.loads(row["stdout"])
    assert result["path"] == "clone", result
    shutil.rmtree(result["old_datadir"])
    row.update(fetched=result["bytes_fetched"], wal=0, phases=result["duration_s"],
               files=result["files"], identical=result.get("files_identical"), blocks=None,
               progress=result.get("progress_overhead"))
    return row


def run_module(target, source, local: bool) -> dict:
    """The module as operators run it: root runs ansible, become (su) to the data
    directory's owner, the node's system Python (psycopg2 only), the built collection."""
    cmd = [VENV_PYTHON.parent / "ansible", "localhost", "-i", "localhost,", "-c", "local",
           "-e", "ansible_python_interpreter=%s" % SYSTEM_PYTHON,
           "-m", "pgops.rewind.pg_rewind", "-a", json.dumps(_params(target, source, local)),
           "--become", "--become-user", "postgres", "--become-method", "su"]
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS_PATH),
               ANSIBLE_STDOUT_CALLBACK="ansible.builtin.minimal", ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_PIPELINING="1")
    row = measure(cmd, cwd="/tmp", env=env)
    assert row["rc"] == 0, row["stdout"][-3000:] + row["stderr"][-3000:]
    return _engine_row(row, json.loads(row["stdout"].split("=>", 1)[1]))


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


def drop_page_cache() -> bool:
    """Cold cache for every contender (root only): the WAL and data files come from disk,
    as they do on a node that just failed over."""
    if os.geteuid() != 0:
        return False
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as handle:
        handle.write("3\n")
    return True


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


# name -> (source running?, runner); one run each on the same diverged snapshot.
CONTENDERS = (
    ("native --source-server", False, run_native),
    ("engine, crc32c", False, run_ours),
    ("engine, psycopg2 only", False, run_ours_system_python),
    ("module via Ansible", False, run_module),
    ("clone fallback", False, run_clone),
    ("native --source-pgdata", True, run_native),
    ("engine, local source", True, run_ours),
)
NATIVE_FOR = {False: "native --source-server", True: "native --source-pgdata"}


def run_suite(state, checks=True, cold=True) -> dict:
    target, source = _nodes(state)
    target.kill()                   # left over from an interrupted run
    rows = {}
    for name, local, runner in CONTENDERS:
        if local and source.is_alive():
            source.stop()
        if not local and not source.is_alive():
            source.start()
        restore_target(state, target)
        dropped = cold and drop_page_cache()
        print("[bench] %s ..." % name, flush=True)
        rows[name] = runner(target, source, local)
        rows[name].update(local=local, cold_cache=dropped)
        if checks:
            rows[name]["verified"] = verify(target, source, restart_source=local)
            if local:
                source.stop()
    if not source.is_alive():
        source.start()
    dropped = cold and drop_page_cache()
    print("[bench] pg_basebackup ...", flush=True)
    rows["pg_basebackup"] = run_basebackup(state, source)
    rows["pg_basebackup"].update(local=False, cold_cache=dropped)
    source.stop()
    restore_target(state, target)
    return rows


PHASES = ("facts", "checkpoint_walk", "wal_scan", "plan", "copy", "finish", "clone")


def report(state, rows) -> str:
    """One table for this divergence point; returned as text (also printed)."""
    size = int(subprocess.run(["du", "-sb", state["snapshot"]], capture_output=True, check=True,
                              text=True).stdout.split()[0])
    common = state.get("common_seconds", 0)
    lines = ["Rewind benchmark: PostgreSQL %d, pgbench scale %d (cluster %.2f GB), %s%d rows "
             "(%.2f %%) of pgbench_accounts updated + %d s pgbench on the old primary; page "
             "cache %s before each run" % (
                 MAJOR, state["scale"], size / 1e9,
                 ("failover point: %d s pgbench after the last checkpoint (common), then "
                  % common) if common else "", state.get("rows", 0), state["divergence"],
                 state["seconds"], "dropped" if all(r.get("cold_cache") for r in rows.values())
                 else "NOT dropped (not root, or --quick)"),
             "%-24s %7s %9s %9s %9s %9s %9s %8s %9s  %s" % (
                 "", "wall s", "vs native", "read src", "written", "WAL read", "WAL skip",
                 "peak RSS", "verified", "phases s: " + " / ".join(PHASES))]
    for name, row in rows.items():
        native = rows[NATIVE_FOR[row.get("local", False)]]
        phases = row.get("phases")
        lines.append("%-24s %7.2f %6.2f× n %9s %9s %9s %9s %5.0f MB %9s  %s" % (
            name, row["seconds"], row["seconds"] / native["seconds"], _fmt_bytes(row["fetched"]),
            _fmt_bytes(row["written"]), _fmt_bytes(row["wal"]), _fmt_bytes(row.get("wal_skipped")),
            row["peak_rss_mb"], {True: "equal", False: "DIFFERENT"}.get(row.get("verified"), "-"),
            " / ".join("%.2f" % phases.get(p, 0) for p in PHASES) if phases else "-"))
    lines.append("(× n: times native pg_rewind's wall time; WAL read: the diverged WAL the scan "
                 "read; WAL skip: the common WAL it did not read)")
    lines += _copy_lines(rows)
    base = rows["pg_basebackup"]["seconds"]
    if "clone fallback" in rows:
        lines.append("clone fallback: %.2f× pg_basebackup's wall time" % (
            rows["clone fallback"]["seconds"] / base))
    for name, row in rows.items():
        if row.get("blocks") is None:
            continue
        overhead = row.get("progress") or {}
        lines.append("%s: %.2f× pg_basebackup's wall time; %d blocks, %s identical files not "
                     "copied; progress file upkeep %.4f s over %s updates; WAL scan %s" % (
                         name, row["seconds"] / base, row["blocks"], row["identical"],
                         overhead.get("seconds", 0), overhead.get("updates", 0),
                         "begun beside the checkpoint search (wal_scan: what was left)"
                         if row.get("scan_ahead") else "after the checkpoint search"))
    text = "\n".join(lines)
    print("\n" + text, flush=True)
    return text


def _copy_lines(rows) -> list:
    """Bytes written by kind, and the copy's rate per connection against pg_basebackup's
    (one connection)."""
    lines = []
    base = rows.get("pg_basebackup")
    base_rate = base["fetched"] / base["seconds"] / 1e6 if base and base.get("fetched") else 0
    for name, row in rows.items():
        kinds, phases = row.get("written_by_kind"), row.get("phases") or {}
        if not kinds or not phases.get("copy"):
            continue
        rate = row["fetched"] / phases["copy"] / 1e6
        connections = row.get("connections") or 1
        lines.append("%s: written %s; copy %.1f MB/s over %d connections, %.1f MB/s each "
                     "(pg_basebackup %.1f MB/s over 1)" % (
                         name, ", ".join("%s %s" % (k, _fmt_bytes(v)) for k, v in kinds.items()),
                         rate, connections, rate / connections, base_rate))
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--scale", type=int, default=150, help="pgbench scale (150 ~ 2.2 GB)")
    parser.add_argument("--divergence", type=float, default=1.0,
                        help="percent of pgbench_accounts updated on the old primary")
    parser.add_argument("--pgbench-seconds", type=int, default=30)
    parser.add_argument("--scaling", choices=["divergence", "size", "goals"],
                        help="divergence: 0.1/1/10 %% of a 2.2 GB table; size: the same 70,000 "
                             "rows on a 1 GB and a 4 GB table; goals: 1 %% and 10 %% plus a "
                             "pgbench run (the speed goals' two points)")
    parser.add_argument("--common-seconds", type=int, default=0,
                        help="pgbench seconds on the primary after its last checkpoint, "
                             "before the fork (the failover point; goals: 40)")
    parser.add_argument("--quick", action="store_true",
                        help="a small try of the chosen points: scale 10, 5 s of common "
                             "pgbench, 2 s of divergence (not a measurement)")
    parser.add_argument("--keep", action="store_true", help="keep the clusters afterwards")
    args = parser.parse_args()
    ensure_installed()
    runs = [(args.scale, args.divergence, args.pgbench_seconds, 0, args.common_seconds)]
    if args.scaling == "divergence":
        runs = [(150, 0.1, 0, 0, 0), (150, 1.0, 0, 0, 0), (150, 10.0, 0, 0, 0)]
    elif args.scaling == "size":
        runs = [(70, 0, 0, 70000, 0), (280, 0, 0, 70000, 0)]
    elif args.scaling == "goals":      # the failover point beside the 1 % and 10 % points
        runs = [(150, 1.0, 10, 0, 40), (150, 1.0, 10, 0, 0), (150, 10.0, 10, 0, 0)]
    if args.quick:
        runs = [(10, d, 2, r, 5 if c else 0) for _s, d, _t, r, c in runs]
    results = REPO / "bench" / "results"
    results.mkdir(exist_ok=True)
    tables = []
    for scale, divergence, seconds, rows, common in runs:
        name = "rewind-s%d-d%s-t%d-r%d%s" % (scale, divergence, seconds, rows,
                                             "-c%d" % common if common else "")
        home = CACHE / "bench" / name
        state = build(home, scale, divergence, seconds, rows, common)
        outcome = run_suite(state, cold=not args.quick)   # a quick try leaves the cache
        tables.append(report(state, outcome))
        (results / (name + ".json")).write_text(json.dumps(
            {k: {kk: vv for kk, vv in v.items() if kk not in ("stdout", "stderr")}
             for k, v in outcome.items()}, indent=2))
        if not args.keep:             # a few GB each: the disk would not hold them all
            shutil.rmtree(home, ignore_errors=True)
    (results / ("%s%s.txt" % (args.scaling or "default", "-quick" if args.quick else ""))
     ).write_text("\n\n".join(tables) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
