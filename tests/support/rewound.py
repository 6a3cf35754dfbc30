"""Checking a rewind the only way that counts: the rewound node follows the new primary
and holds exactly its data."""

from __future__ import annotations

from .ansible import run_module
from .compare import compare


def rewind(fo, check=False, diff=False, python=None, **args) -> dict:
    params = {"target_pgdata": str(fo.old_primary.datadir), "write_recovery_conf": True}
    if "source_pgdata" not in args:
        params["source_server"] = fo.new_primary.conninfo()
    params.update(args)
    return run_module("pg_rewind", params, check=check, diff=diff, python=python)


def assert_follows_and_matches(fo, catalogs: bool = True, writer=None) -> None:
    """Start the rewound node as a standby; it must stream from the new primary, replay
    to its current position, and then every table must be equal. `writer` is where new
    writes go when the source is itself a standby."""
    old, new = fo.old_primary, fo.new_primary
    old.start()
    new.wait_until(lambda: new.scalar(
        "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'") >= 1,
        what="the rewound node streaming")
    assert old.in_recovery()
    primary = writer or new
    primary.sql("CREATE TABLE IF NOT EXISTS after_rewind (id int)")
    primary.sql("INSERT INTO after_rewind VALUES (1)")
    if writer is not None:
        writer.wait_for_replay(new)
    new.wait_for_replay(old)
    result = compare(new, old, catalogs=catalogs)
    assert result.equal, str(result)
