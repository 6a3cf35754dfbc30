"""A resumed rewind makes durable what the run it resumes changed, before the new
pg_control is installed.

The first run writes without fsync (sync: false: its changes sit in the page cache, as
any run's do until it syncs) and is killed just before backup_label, so it has done
every copy, truncation, removal and mkdir of the plan. The second run resumes; most of
that work is now identical and skipped. The engine's recorder
(PGOPS_REWIND_SYNC_RECORD) lists what the first run changed and what the second one
fsynced: every changed path that still exists, and the directory holding it (or, when
that was removed too, the one above), must be fsynced before global/pg_control is
renamed into place.
"""

import os
from pathlib import Path

from support.cluster import chown_tree
from support.engine import run_cli
from support.rewound import assert_follows_and_matches
from support.scenarios import Failover, diverge_new_primary, diverge_old_primary, seed

RECORD = "PGOPS_REWIND_SYNC_RECORD"


def _diverged_with_databases(bed, major):
    """Both sides create and drop files and whole directories after the fork."""
    primary, standby = bed.primary_and_standby(major)
    seed(primary)
    primary.sql("CREATE DATABASE before_fork")
    primary.wait_for_replay(standby)
    standby.promote()
    primary.sql("CREATE DATABASE old_side")
    primary.sql("CREATE TABLE x AS SELECT generate_series(1, 5000) g", dbname="old_side")
    primary.sql("DROP DATABASE before_fork")
    diverge_old_primary(primary)
    diverge_new_primary(standby)
    standby.sql("CREATE DATABASE new_side")
    standby.sql("CREATE TABLE y AS SELECT generate_series(1, 5000) g", dbname="new_side")
    standby.checkpoint()
    primary.stop()
    return Failover(primary, standby)


def _events(path: Path) -> list:
    return [tuple(line.split(" ", 1)) for line in path.read_text().splitlines()]


def test_resumed_run_syncs_what_the_killed_run_changed(bed, collection, major):
    fo = _diverged_with_databases(bed, major)
    datadir = str(fo.old_primary.datadir)
    logs = bed.home / "records"
    logs.mkdir()
    chown_tree(logs)
    params = {"target_pgdata": datadir, "source_server": fo.new_primary.conninfo(),
              "write_recovery_conf": True, "parallel": 2, "bindir": str(fo.old_primary.bindir)}

    first = run_cli("rewind", dict(params, sync=False), fault="kill@replace_file backup_label",
                    extra_env={RECORD: str(logs / "first")})
    assert first["_rc"] == -9, first
    changed = {what.split(" ", 1)[1] for event, what in _events(logs / "first")
               if event == "change" and not what.startswith("replace_file backup_label")}

    second = run_cli("rewind", dict(params, sync=True), extra_env={RECORD: str(logs / "second")})
    assert second["_rc"] == 0 and second.get("resumed"), second
    events = _events(logs / "second")
    control = ("rename", os.path.join(datadir, "global", "pg_control"))
    assert control in events, events[-10:]
    synced = {what for event, what in events[:events.index(control)] if event == "fsync"}
    redone = {what.split(" ", 1)[1] for event, what in events if event == "change"}

    assert any(p.startswith("base/") for p in changed - redone), \
        "the resumed run skipped some of the first run's work (else this proves nothing)"
    missing = []
    for rel in sorted(changed):
        path = os.path.join(datadir, rel)
        if os.path.lexists(path) and not os.path.islink(path) and path not in synced:
            missing.append(rel)
        parent = os.path.dirname(path)
        while not os.path.isdir(parent):        # removed with its directory: the one above
            parent = os.path.dirname(parent)
        if parent not in synced:
            missing.append(os.path.relpath(parent, datadir) + "/")
    assert not missing, "not fsynced before pg_control: %s" % sorted(set(missing))[:20]
    assert_follows_and_matches(fo)
