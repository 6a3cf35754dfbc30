"""kill -9 at any moment of a rewind: the target never starts as a half-rewound primary,
and running the same rewind again completes it.

For each scenario the rewind is killed at random points (seeded, so a failure can be
replayed): early, in the middle and late in the copy, then at three steps of the finish.
Each kill is in the run that resumes the one killed before; the number of changes
that run would make is counted first, on a copy of the target as it is then. Finally
the rewind is allowed to complete. After every kill:
  (a) `pg_ctl start` does not give a primary: it fails (pg_control is set aside), or,
      once the rewind's last step happened, the node comes up in recovery;
  (b) the rerun completes (the last one), and
  (c) the node streams from the new primary with all data equal.
"""

import os
import random
import shutil

import pytest

from support.cluster import chown_tree
from support.engine import run_cli
from support.rewound import assert_follows_and_matches
from support.scenarios import Failover, failover, seed

KILLS_PER_SCENARIO = 6


def _params(fo, target=None):
    return {"target_pgdata": str(target or fo.old_primary.datadir),
            "source_server": fo.new_primary.conninfo(), "write_recovery_conf": True,
            "sync": False, "parallel": 2,
            "bindir": str(fo.old_primary.bindir)}


def _count_steps(bed, fo) -> int:
    """Changes a complete rewind of this target makes (counted on a copy of it)."""
    copy = bed.home / "count-copy"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(fo.old_primary.datadir, copy, symlinks=True)
    chown_tree(copy)
    os.chmod(copy, 0o700)
    counter = bed.home / "steps"
    os.chmod(bed.home, 0o777)
    result = run_cli("rewind", _params(fo, copy), fault="count:%s" % counter)
    assert result["_rc"] == 0, result
    shutil.rmtree(copy)
    return int(counter.read_text().split()[0])


def _start_is_not_a_primary(node):
    """(a): starting it either fails, or yields a server in recovery (then it is stopped)."""
    proc = node.pg_ctl("-l", node.logfile, "-w", "-t", "60", "start", check=False)
    if proc.returncode != 0:
        assert not node.is_alive()
        return "refused"
    try:
        assert node.scalar("SELECT pg_is_in_recovery()") is True, "a half-rewound primary!"
    finally:
        node.stop(mode="immediate")
    return "recovery"


# The finish, step by step (see finish.py): data made durable, backup_label, standby
# configuration, the journal noting the new pg_control, the new pg_control itself
# (the rewind is complete), the journal removed.
FINISH_STEPS = ["replace_file backup_label", "replace_file <standby configuration>",
                "journal update", "replace_file global/pg_control", "journal complete"]


def _kill_point(rng, where, steps, major):
    """A fault spec: a random step in the first, middle or last third of the `steps`
    the next run would take, or a step of the finish by name."""
    if where == "finish":
        step = rng.choice(FINISH_STEPS)
        return "kill@" + step.replace("<standby configuration>",
                                      "recovery.conf" if major == 11 else "postgresql.auto.conf")
    third = max(1, steps // 3)
    low = {"early": 3, "middle": third, "late": 2 * third}[where]
    return "kill:%d" % rng.randint(low, max(low, min(low + third, steps - 6)))


SCENARIOS = {
    11: "basic",
    14: "databases",
    15: "basic",
    18: "crashed",
}


def _scenario(bed, major, kind):
    if kind == "crashed":
        return failover(bed, major, stop_mode="immediate")
    if kind == "databases":
        primary, standby = bed.primary_and_standby(major)
        seed(primary)
        primary.sql("CREATE DATABASE before_fork")
        primary.wait_for_replay(standby)
        standby.promote()
        primary.sql("CREATE DATABASE old_side")
        primary.sql("CREATE TABLE x AS SELECT generate_series(1, 5000) g", dbname="old_side")
        primary.sql("DROP DATABASE before_fork")
        standby.sql("CREATE DATABASE new_side")
        standby.sql("CREATE TABLE y AS SELECT generate_series(1, 5000) g", dbname="new_side")
        primary.stop()
        return Failover(primary, standby)
    return failover(bed, major)


@pytest.mark.parametrize("major", sorted(SCENARIOS))
def test_killed_at_any_point_then_completed(bed, collection, major):
    fo = _scenario(bed, major, SCENARIOS[major])
    rng = random.Random(1000 + major)
    outcomes = []
    for where in ("early", "middle", "late", "finish", "finish", "finish"):
        steps = _count_steps(bed, fo) if where != "finish" else 0
        point = _kill_point(rng, where, steps, major)
        result = run_cli("rewind", _params(fo), fault=point)
        if result["_rc"] == 0:
            outcomes.append((point, "completed before the kill point"))
            break
        assert result["_rc"] == -9, result
        journal = fo.old_primary.datadir / "pgops_rewind"
        if (journal / "pg_control.target").exists():
            outcomes.append((point, _start_is_not_a_primary(fo.old_primary)))
        else:
            outcomes.append((point, "killed before the first change"))
    final = run_cli("rewind", _params(fo))
    assert final["_rc"] == 0, final
    assert not (fo.old_primary.datadir / "pgops_rewind").exists()
    assert len(outcomes) >= KILLS_PER_SCENARIO - 1, outcomes
    assert any(o == "refused" for _p, o in outcomes), outcomes
    assert_follows_and_matches(fo)
