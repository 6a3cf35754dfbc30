"""Render the generated documents: docs/troubleshooting.md from the engine's error
catalog and docs/faults.md from the tests' fault catalog.

    .cache/venv/bin/python scripts/render_docs.py          write them
    .cache/venv/bin/python scripts/render_docs.py --check  exit 1 if they are stale
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests"), str(REPO / ".cache" / "src")]


def troubleshooting() -> str:
    from ansible_collections.pgops.rewind.plugins.module_utils.errors import CATALOG
    lines = ["# Troubleshooting", "",
             "Every error the engine (and so `pgops.rewind.pg_rewind`, `pg_rewind_info`, the "
             "role) can raise, by its `error_code` (returned with every failure, next to "
             "`msg` and `hint`). Refusals happen before the target is changed; errors after "
             "a rewind began leave the target unstartable and are completed by running the "
             "same task again.", "",
             "No error code, only a symptom (a play that hangs, a node that does not "
             "stream, a slot that holds WAL)? See "
             "[troubleshooting by symptom](troubleshooting-by-symptom.md).", "",
             "Generated from `plugins/module_utils/errors.py` (`scripts/render_docs.py`).", "",
             "| error_code | What it means | What to do |", "| --- | --- | --- |"]
    for code in sorted(CATALOG):
        cause, remedy = CATALOG[code]
        lines.append("| `%s` | %s | %s |" % (code, cause, remedy))
    return "\n".join(lines + STARTUP_SYMPTOMS) + "\n"


# What the rewound node's server log says when it does not start, and what the
# collection does about it (hand-written; rendered after the error table).
STARTUP_SYMPTOMS = [
    "", "## The rewound node does not start", "",
    "- **`recovery aborted because of insufficient parameter settings` ... `max_connections = 40 "
    "is a lower setting than on the primary server, where its value was 60`.** A hot standby "
    "needs `max_connections`, `max_worker_processes`, `max_wal_senders` (12+), "
    "`max_prepared_transactions` and `max_locks_per_transaction` no lower than the new "
    "primary's. The module compares the target's effective values (its own `postgres -C`, "
    "reading postgresql.conf, its includes and postgresql.auto.conf) with those recorded in the "
    "control data the standby will replay from, and raises the lower ones where the standby "
    "settings are written (`postgresql.auto.conf`, or the role's include file; on 11 "
    "`postgresql.auto.conf`, since recovery.conf cannot hold them). The result says which in "
    "`settings_raised` (also in check mode). Not checked (a warning says so) when the target's "
    "`postgres` is not found: give `bindir`. If the new primary raised a setting and lowered it "
    "again while the node was away, replay still meets the higher value: raise it by hand.",
    "- **`syntax error in file \"postgresql.auto.conf\"` / `configuration file contains "
    "errors` after a rejoin with a password holding quotes or backslashes.** Written by a "
    "version before this fix: PostgreSQL's configuration parser reads a backslash inside a "
    "quoted value as an escape. The collection now doubles quotes and backslashes (as "
    "`ALTER SYSTEM` does), and quotes connection string values as libpq reads them back: "
    "delete the broken `primary_conninfo` line (the module refuses with `settings_unreadable` "
    "while the configuration cannot be read) and run the role or the module again.",
]


def faults() -> str:
    from resilience.catalog import render
    return render()


DOCS = {"docs/troubleshooting.md": troubleshooting, "docs/faults.md": faults}


def main(argv) -> int:
    stale = []
    for name, render in DOCS.items():
        text = render()
        path = REPO / name
        if "--check" in argv:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            path.write_text(text)
    if stale:
        print("stale: %s (run scripts/render_docs.py)" % ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
