"""What a rewind throws away, counted from the old primary's WAL after the fork: a known
workload on every major gives exact counts, names resolved through the new primary's
catalog, in pg_rewind (check mode too) and pg_rewind_info, and in the JSON file."""

import json
from datetime import datetime

from support.ansible import run_module
from support.digest import datadir_digest
from support.rewound import assert_follows_and_matches, rewind
from support.scenarios import Failover


def _workload_after_the_fork(bed, major):
    primary = bed.cluster("primary", major).init(settings={"max_prepared_transactions": "5"})
    primary.start()
    primary.sql("CREATE TABLE ledger (id int PRIMARY KEY, amount int, note text)")
    primary.sql("INSERT INTO ledger SELECT g, 0, 'seed' FROM generate_series(1, 10000) g")
    primary.sql("CREATE TABLE kept (id int)")
    primary.sql("VACUUM FREEZE")
    primary.checkpoint()
    standby = bed.adopt(primary.create_standby("standby"))
    primary.wait_for_replay(standby)
    standby.promote()
    standby.checkpoint()
    # after the fork, on the old primary only:
    primary.sql("INSERT INTO ledger SELECT g, 1, 'new' FROM generate_series(10001, 15000) g")
    primary.sql("UPDATE ledger SET amount = amount + 1 WHERE id <= 5000")
    primary.sql("DELETE FROM ledger WHERE id > 14433")
    conn = primary.connect()
    try:
        conn.autocommit = False
        with conn.cursor() as cur:
            cur.execute("INSERT INTO kept SELECT generate_series(1, 77)")
        conn.rollback()                                   # aborted: not discarded work
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("BEGIN")
            cur.execute("INSERT INTO kept SELECT generate_series(1, 11)")
            cur.execute("PREPARE TRANSACTION 'pending'")
    finally:
        conn.close()
    primary.stop()
    return Failover(primary, standby)


def _check(report, major):
    xacts = report["transactions"]
    assert (xacts["committed"], xacts["aborted"], xacts["prepared"]) == (3, 1, 1), xacts
    assert xacts["xid_min"] <= xacts["xid_max"]
    first, last = (datetime.fromisoformat(xacts[k]) for k in ("first_commit", "last_commit"))
    assert first <= last
    by_name = {r["name"]: r for r in report["relations"] if r["name"]}
    ledger = by_name["ledger"]
    assert (ledger["inserted"], ledger["updated"], ledger["deleted"]) == (5000, 5000, 567), ledger
    assert ledger["schema"] == "public" and ledger["database"] == "postgres"
    assert not (ledger["created"] or ledger["dropped"])
    kept = by_name["kept"]
    assert (kept["inserted"], kept["updated"], kept["deleted"]) == (11, 0, 0), kept
    assert report["databases"] == {"created": [], "dropped": []}


def test_discarded_work_is_counted_exactly(bed, collection, major):
    fo = _workload_after_the_fork(bed, major)
    info = run_module("pg_rewind_info", {"target_pgdata": str(fo.old_primary.datadir),
                                         "source_server": fo.new_primary.conninfo()})
    assert not info.get("failed"), info.get("msg")
    _check(info["discarded"], major)
    dry = rewind(fo, check=True)
    assert not dry["failed"], dry.get("msg")
    _check(dry["discarded"], major)
    report = bed.home / "discarded.json"
    before = datadir_digest(fo.old_primary.datadir)
    refused = rewind(fo, discarded_file=str(report))     # bed.home: root's, not writable
    assert refused["failed"] and refused["error_code"] == "bad_parameters", refused
    assert "discarded_file" in refused["msg"] and datadir_digest(
        fo.old_primary.datadir) == before
    bed.home.chmod(0o777)
    result = rewind(fo, discarded_file=str(report))
    assert not result["failed"], result.get("msg")
    _check(result["discarded"], major)
    assert json.loads(report.read_text()) == result["discarded"]
    assert_follows_and_matches(fo)
