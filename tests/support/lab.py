"""A primary/standby lab on this host, from the command line (Molecule, `make demo`).

    lab.py create   --dir DIR [--major 15] [--scale 0]   primary + streaming standby
    lab.py failover --dir DIR [--old-primary stop|crash|running] [--max-connections N]
                    [--replication-password-env VAR]
                                     promote the standby, write on both sides
    lab.py compare  --dir DIR        exit 0 when both nodes hold the same data
    lab.py status   --dir DIR        the lab as JSON
    lab.py destroy  --dir DIR        stop every server, remove the directory

The lab's state (nodes, ports, paths) lives in DIR/lab.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from support.cluster import Cluster, run_pg  # noqa: E402
from support.compare import compare  # noqa: E402
from support.env import debian_tool, pg_os_user  # noqa: E402
from support.scenarios import diverge_new_primary, diverge_old_primary, seed  # noqa: E402

STATE = "lab.json"


def _save(home: Path, nodes: dict, **extra) -> None:
    state = {"home": str(home), "os_user": pg_os_user(), **extra, "nodes": {
        role: {"name": n.name, "major": n.major, "port": n.port, "datadir": str(n.datadir),
               "sockdir": str(n.sockdir), "bindir": str(n.bindir), "logfile": str(n.logfile)}
        for role, n in nodes.items()}}
    (home / STATE).write_text(json.dumps(state, indent=2))


def _load(home: Path):
    state = json.loads((home / STATE).read_text())
    nodes = {}
    for role, info in state["nodes"].items():
        node = Cluster(info["name"], info["major"], home)
        node.port = info["port"]
        nodes[role] = node
    return state, nodes


def create(home: Path, major: int, scale: int) -> None:
    home.mkdir(parents=True, exist_ok=True)
    os.chmod(home, 0o755)
    primary = Cluster("primary", major, home)
    primary.init(checksums=False, wal_log_hints=True, fsync=True)
    primary.start()
    seed(primary)
    if scale:
        run_pg([debian_tool("pgbench"), "-h", "127.0.0.1", "-p", primary.port, "-U", "postgres",
                "-i", "-s", scale, "-q", "postgres"],
               timeout=3600)
    standby = primary.create_standby("standby")
    primary.wait_for_replay(standby)
    _save(home, {"old_primary": primary, "new_primary": standby}, major=major)


def require_replication_password(node: Cluster, user: str, password: str) -> None:
    """A replication role that must log in with `password` (md5 or SCRAM) over TCP."""
    node.sql("CREATE ROLE %s REPLICATION LOGIN PASSWORD %%s" % user, (password,))
    with open(node.datadir / "pg_hba.conf", "w") as hba:
        hba.write("local all all trust\nhost all postgres 127.0.0.1/32 trust\n"
                  "host replication postgres 127.0.0.1/32 trust\n"
                  "host replication %s 127.0.0.1/32 md5\n" % user)
    node.sql("SELECT pg_reload_conf()")


def failover(home: Path, old_primary: str, workload_seconds: int,
             max_connections: int = 0, replication_password: str = "") -> None:
    state, nodes = _load(home)
    old, new = nodes["old_primary"], nodes["new_primary"]
    old.wait_for_replay(new)
    new.promote()
    new.checkpoint()
    if replication_password:
        require_replication_password(new, "replicator", replication_password)
        state["replication_user"] = "replicator"
    if max_connections:       # raised after the failover: the old primary's is lower
        new.sql("ALTER SYSTEM SET max_connections = %d" % max_connections)
        new.restart()
        state["max_connections"] = max_connections
    started = time.time()
    diverge_old_primary(old)
    diverge_new_primary(new)
    if workload_seconds:
        bench = [debian_tool("pgbench"), "-U", "postgres", "-h", "127.0.0.1", "-n",
                 "-T", str(workload_seconds), "-c", "2", "postgres"]
        if old.scalar("SELECT to_regclass('pgbench_accounts') IS NOT NULL"):
            run_pg(bench[:3] + ["-p", str(old.port)] + bench[3:], timeout=3600)
            run_pg(bench[:3] + ["-p", str(new.port)] + bench[3:], timeout=3600)
    state["fork"] = (new.datadir / "pg_wal" / "00000002.history").read_text().split("\t")[1]
    state["diverged_for_s"] = round(time.time() - started, 1)
    if old_primary == "stop":
        old.stop()
    elif old_primary == "crash":
        old.stop(mode="immediate")
    _save(home, {"old_primary": old, "new_primary": new}, **{
        k: v for k, v in state.items() if k not in ("home", "os_user", "nodes")})


def destroy(home: Path) -> None:
    if (home / STATE).exists():
        _state, nodes = _load(home)
        for node in nodes.values():
            node.kill()
    shutil.rmtree(home, ignore_errors=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("command", choices=["create", "failover", "compare", "status", "destroy"])
    parser.add_argument("--dir", required=True, type=Path)
    parser.add_argument("--major", type=int, default=15)
    parser.add_argument("--scale", type=int, default=0, help="pgbench scale of the seed data")
    parser.add_argument("--old-primary", choices=["stop", "crash", "running"], default="stop")
    parser.add_argument("--workload-seconds", type=int, default=0)
    parser.add_argument("--max-connections", type=int, default=0,
                        help="failover: raise the new primary's max_connections to this")
    parser.add_argument("--replication-password-env", default="",
                        help="failover: a role `replicator` must stream with the password in "
                             "this environment variable")
    args = parser.parse_args(argv)
    home = args.dir.resolve()
    if args.command == "create":
        create(home, args.major, args.scale)
    elif args.command == "failover":
        failover(home, args.old_primary, args.workload_seconds, args.max_connections,
                 os.environ.get(args.replication_password_env, "")
                 if args.replication_password_env else "")
    elif args.command == "compare":
        _state, nodes = _load(home)
        result = compare(nodes["new_primary"], nodes["old_primary"], catalogs=True)
        print(str(result))
        return 0 if result.equal else 1
    elif args.command == "status":
        print((home / STATE).read_text())
    else:
        destroy(home)
    return 0


if __name__ == "__main__":
    sys.exit(main())
