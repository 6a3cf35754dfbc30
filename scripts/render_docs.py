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
             "Generated from `plugins/module_utils/errors.py` (`scripts/render_docs.py`).", "",
             "| error_code | What it means | What to do |", "| --- | --- | --- |"]
    for code in sorted(CATALOG):
        cause, remedy = CATALOG[code]
        lines.append("| `%s` | %s | %s |" % (code, cause, remedy))
    return "\n".join(lines) + "\n"


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
