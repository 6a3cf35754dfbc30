"""Failover scenarios built on real clusters: the situations a rewind meets in the field."""

from __future__ import annotations

from dataclasses import dataclass

from .cluster import Cluster


@dataclass
class Failover:
    old_primary: Cluster     # the target of a rewind
    new_primary: Cluster     # the source


def seed(node: Cluster, rows: int = 20000) -> None:
    node.sql("CREATE TABLE accounts (id int PRIMARY KEY, balance int, note text) "
             "WITH (fillfactor = 80)")
    node.sql("INSERT INTO accounts SELECT g, 0, repeat('n', 50) FROM generate_series(1, %s) g",
             (rows,))
    node.sql("CREATE TABLE history (id bigserial PRIMARY KEY, note text)")
    node.sql("CREATE TABLE shrinking AS SELECT g AS id, repeat('s', 100) AS pad "
             "FROM generate_series(1, 20000) g")
    node.sql("CREATE TABLE growing (id int, pad text)")
    node.sql("CREATE TABLE dropped_on_old (id int)")
    node.sql("INSERT INTO dropped_on_old SELECT generate_series(1, 100)")
    node.sql("CREATE UNLOGGED TABLE scratch AS SELECT generate_series(1, 1000) AS id")
    # Hint bits set now, before the fork: reading a page later (the comparison reads the
    # new primary first) must not write a full-page image that would repair, on replay,
    # a page the rewind failed to copy back.
    node.sql("VACUUM FREEZE")
    node.checkpoint()


def diverge_old_primary(node: Cluster) -> None:
    """Writes only the old primary makes after the fork: all of them must be undone."""
    node.sql("UPDATE accounts SET balance = balance - 1, note = 'old' WHERE id % 13 = 0")
    node.sql("INSERT INTO history (note) SELECT 'old ' || g FROM generate_series(1, 500) g")
    node.sql("DELETE FROM shrinking WHERE id > 100")
    node.sql("VACUUM shrinking")
    node.sql("INSERT INTO growing SELECT g, repeat('g', 200) FROM generate_series(1, 5000) g")
    node.sql("DROP TABLE dropped_on_old")
    node.sql("CREATE TABLE only_on_old AS SELECT generate_series(1, 1000) AS id")
    node.sql("CREATE INDEX accounts_note ON accounts (note)")
    node.sql("VACUUM FULL history")                  # a new relfilenode on this side only


def diverge_new_primary(node: Cluster) -> None:
    """Writes the new primary makes after the fork: the rewound node must end up with them."""
    node.sql("UPDATE accounts SET balance = balance + 1, note = 'new' WHERE id % 7 = 0")
    node.sql("INSERT INTO history (note) SELECT 'new ' || g FROM generate_series(1, 300) g")
    node.sql("CREATE TABLE only_on_new AS SELECT generate_series(1, 500) AS id")
    node.sql("VACUUM FULL accounts")


def failover(bed, major: int, diverge: bool = True, checkpoint_source: bool = True,
             stop_mode: str = "fast", **init_args) -> Failover:
    """Primary + streaming standby; the standby is promoted; both write; the old primary
    is stopped (stop_mode None: left running). Returns both nodes (the new primary still
    running)."""
    primary, standby = bed.primary_and_standby(major, **init_args)
    seed(primary)
    primary.wait_for_replay(standby)
    standby.promote()
    if checkpoint_source:
        standby.checkpoint()
    if diverge:
        diverge_old_primary(primary)
        diverge_new_primary(standby)
    if stop_mode:
        primary.stop(mode=stop_mode)
    return Failover(primary, standby)


def switchover(bed, major: int, **init_args) -> Failover:
    """The primary is stopped cleanly first (the standby receives everything), then the
    standby is promoted: the old primary is an ancestor and needs no rewind."""
    primary, standby = bed.primary_and_standby(major, **init_args)
    seed(primary)
    primary.stop()
    standby.wait_until(lambda: standby.scalar(
        "SELECT pg_last_wal_replay_lsn() = pg_last_wal_receive_lsn()"), what="replay done")
    standby.promote()
    diverge_new_primary(standby)
    return Failover(primary, standby)


def twin_promotions(bed, major: int, same_switch_point: bool = False) -> tuple:
    """Primary A with standbys B and C; A stops; B and C are promoted each on its own
    (two failover managers), both reach timeline 2 and both write. Unless
    `same_switch_point`, C was stopped before A's last update, so C's timeline 2 starts
    earlier than B's. Returns (A, B, C) with B and C running, A stopped."""
    a, b = bed.primary_and_standby(major)
    c = bed.adopt(a.create_standby("standby2"))
    seed(a)
    a.wait_for_replay(b)
    a.wait_for_replay(c)
    if not same_switch_point:
        c.stop()
        a.sql("UPDATE accounts SET balance = balance + 100, note = 'only B' WHERE id % 5 = 0")
        a.wait_for_replay(b)
    a.stop()
    for node in (b, c):
        if not node.is_alive():
            node.start()
    if same_switch_point:        # both received A's shutdown checkpoint
        for node in (b, c):
            node.wait_until(lambda n=node: n.scalar(
                "SELECT pg_last_wal_replay_lsn() = pg_last_wal_receive_lsn()"), what="replay")
    b.promote()
    c.promote()
    b.checkpoint()
    c.checkpoint()
    diverge_new_primary(b)
    diverge_old_primary(c)
    return a, b, c
