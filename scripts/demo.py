"""`make demo`: a real failover on this machine, repaired by the rejoin playbook.

Builds a primary and a streaming standby (PostgreSQL $PG_MAJOR, default 15) with a few
hundred MB of pgbench data, promotes the standby, writes on both sides so their
histories diverge, runs playbooks/rejoin_old_primary.yml against the old primary, and
reports what the rewind did and that the old primary now streams from the new one and
holds the same data. Everything is removed afterwards.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests"), str(REPO / ".cache" / "src")]

from support import lab  # noqa: E402
from support.ansible import run_playbook  # noqa: E402
from support.collection import ensure_installed  # noqa: E402
from support.compare import compare  # noqa: E402


def _du(path: str) -> int:
    return int(subprocess.run(["du", "-sb", path], capture_output=True, text=True,
                              check=True).stdout.split()[0])


def _mb(size) -> str:
    return "%.1f MB" % (int(size) / 1e6)


def main() -> int:
    major = int(os.environ.get("PG_MAJOR", "15"))
    scale = int(os.environ.get("DEMO_SCALE", "20"))
    home = Path(tempfile.mkdtemp(prefix="pgops-demo-", dir="/tmp"))
    report_file = home / "report.json"
    print("== pgops.rewind demo: PostgreSQL %d, pgbench scale %d, in %s" % (major, scale, home))
    try:
        ensure_installed()
        print("-- building a primary and a streaming standby (this loads the data) ...")
        lab.main(["create", "--dir", str(home), "--major", str(major), "--scale", str(scale)])
        print("-- failing over: the standby is promoted; both sides keep writing ...")
        lab.main(["failover", "--dir", str(home), "--workload-seconds", "10"])
        state, nodes = lab._load(home)
        old, new = nodes["old_primary"], nodes["new_primary"]
        os.chmod(home, 0o777)        # the report is written by the PostgreSQL OS user
        inventory = home / "inventory.ini"
        inventory.write_text(
            "[old_primary]\nold ansible_connection=local pg_address=127.0.0.1 pg_port=%d\n"
            "[new_primary]\nnew ansible_connection=local pg_address=127.0.0.1 pg_port=%d\n"
            % (old.port, new.port))
        print("-- running playbooks/rejoin_old_primary.yml ...")
        started = time.monotonic()
        result = run_playbook(str(REPO / "playbooks" / "rejoin_old_primary.yml"), {
            "pg_rewind_pgdata": str(old.datadir), "pg_rewind_bindir": str(old.bindir),
            "pg_rewind_os_user": state["os_user"], "pg_rewind_local_host": "127.0.0.1",
            "pg_rewind_report_file": str(report_file),
            "rejoin_fleet_summary_file": str(home / "fleet.json"),
            "ansible_become_method": "su" if os.geteuid() == 0 else "sudo"},
            inventory=str(inventory))
        took = time.monotonic() - started
        if result["rc"] != 0:
            print(result["stdout"][-5000:] + result["stderr"][-2000:])
            print("!! the playbook failed")
            return 1
        report = json.loads(report_file.read_text())
        same = compare(new, old, catalogs=True)
        size = _du(str(new.datadir))
        status = old.sql("SELECT status, sender_port FROM pg_stat_wal_receiver")
        print()
        print("== report")
        print("   fork (divergence)      : %s on timeline %s" % (
            report["divergence"]["lsn"], report["divergence"]["timeline"]))
        print("   last common checkpoint : %s (replay restarted from %s)" % (
            report["last_common_checkpoint"]["lsn"], report["last_common_checkpoint"]["redo"]))
        print("   old primary's own WAL  : %s read since that checkpoint"
              % _mb(report["wal_bytes_scanned"]))
        print("   copied from new primary: %s in %s blocks and %s whole files, of a %s cluster "
              "(%.1f%%)" % (_mb(report["bytes_fetched"]), report["blocks_copied"],
                            report["files"]["copied"], _mb(size),
                            100.0 * int(report["bytes_fetched"]) / size))
        print("   rewind phases (s)      : %s" % ", ".join(
            "%s %.2f" % item for item in report["duration_s"].items()))
        print("   playbook wall time     : %.1f s (stop, rewind, configure, start, wait)" % took)
        print("   old primary now        : in recovery=%s, wal receiver %s from port %s "
              "(new primary: %d), replay lag %s bytes" % (
                  old.in_recovery(), status[0][0], status[0][1], new.port,
                  report["replay_lag_bytes"]))
        print("   data                   : %s (%d tables in %d databases compared)" % (
            "identical to the new primary" if same.equal else "DIFFERENT: " + str(same),
            len(same.left.tables), len(same.left.databases)))
        return 0 if same.equal and status[0][0] == "streaming" else 1
    finally:
        lab.main(["destroy", "--dir", str(home)])
        print("-- cleaned up %s" % home)


if __name__ == "__main__":
    sys.exit(main())
