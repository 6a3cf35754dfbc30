"""Every key a module returns is in its RETURN (recursively where RETURN says what a dict
contains), every documented dict says what it contains and shows a sample: each module
run on real servers, in check mode and for real, on the paths that return the most
(a rewind with a slot, a clone, the target's own server)."""

import pytest

from support.ansible import run_module
from support.returns import dicts_without_contains_or_sample, documented_returns, \
    undocumented_keys
from support.rewound import rewind
from support.scenarios import failover

MODULES = ("pg_rewind", "pg_rewind_info", "pg_physical_slot")


@pytest.mark.parametrize("module", MODULES)
def test_every_documented_dict_has_contains_and_a_sample(module):
    assert dicts_without_contains_or_sample(documented_returns(module)) == []


MISSING = []


def _assert_documented(module, result):
    """Collected, so that one run lists every key missing from every module."""
    assert not result.get("failed"), result
    MISSING.extend("%s: %s" % (module, key)
                   for key in undocumented_keys(result, documented_returns(module)))


@pytest.mark.parametrize("major", [11, 15, 18])
def test_what_the_modules_return_is_documented(bed, collection, tmp_path, major):
    MISSING.clear()
    fo = failover(bed, major)
    old, new = fo.old_primary, fo.new_primary
    source = {"source_server": new.conninfo()}

    for check in (True, False):
        slot = run_module("pg_physical_slot", dict(source, name="pgops_returns"), check=check)
        _assert_documented("pg_physical_slot", slot)
    dropped = run_module("pg_physical_slot", dict(source, name="pgops_returns", state="absent"))
    _assert_documented("pg_physical_slot", dropped)

    info = run_module("pg_rewind_info", dict(source, target_pgdata=str(old.datadir),
                                             check_replication=True, fallback="clone"))
    _assert_documented("pg_rewind_info", info)
    assert info["discarded"] and info["plan"]["path"] == "rewind"

    for check in (True, False):
        rewound = rewind(fo, check=check, diff=True, bindir=str(old.bindir),
                         discarded_file=str(old.datadir.parent / "discarded.json"), max_rate="1024M")
        _assert_documented("pg_rewind", rewound)
        assert rewound["slot"] and rewound["discarded"] and rewound["largest"] is not None
    old.start()

    running = run_module("pg_rewind_info", dict(source, target_pgdata=str(old.datadir),
                                                target_server=old.conninfo()))
    _assert_documented("pg_rewind_info", running)
    assert running["server"]["running"] and running["target_connection"]
    old.promote()           # diverged again (and newer than the source), for the clone
    old.sql("CREATE TABLE after_promotion AS SELECT 1 AS x")
    old.stop()

    for check in (True, False):
        cloned = rewind(fo, check=check, fallback="clone", clone_when="always", sync=False,
                        clone_discard_old=True, bindir=str(old.bindir), allow_older_source=True)
        _assert_documented("pg_rewind", cloned)
        assert cloned["path"] == "clone"
    assert sorted(set(MISSING)) == [], "\n".join(sorted(set(MISSING)))
