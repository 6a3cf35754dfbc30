# -*- coding: utf-8 -*-
# Copyright: pgops.rewind developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Slots this collection created that nothing streams through any more.

A rewind run by the module with its defaults leaves its slot for "whoever sees the node
stream" to drop (keep_slot false); a caller who uses the module as they used pg_rewind
never does, and an inactive slot keeps the new primary's WAL until its disk is full.
pg_rewind_info, which an operator runs anyway, therefore reviews the slots of ours on
the source:

- ours: a physical slot named with our prefix (pgops_rewind_), or the node's slot name;
- the node's slot: the one pg_rewind reserves for this node (slot_name, default
  pgops_rewind_<this host>);
- unused: the node's slot, inactive, while the node itself runs as a standby whose WAL
  receiver streams without it (another slot or none). Then the slot reserves WAL for no
  one, and it is dropped (not in check mode, not with drop_unused_slot: false).

The node's state comes from target_server when given; otherwise, when its postmaster
runs, from its own Unix socket (the directory and port postmaster.pid names), as the OS
user the module runs as (the data directory's owner). A node that cannot be asked is
not known to stream: nothing is dropped.

Every inactive slot of ours is reported with the WAL it holds on the source (its
current WAL position minus the slot's restart_lsn), with a warning.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Optional

from ..errors import SourceError
from ..source.connection import DEFAULT_CONNECT_TIMEOUT, psycopg2
from ..target.directory import server_running
from ..target.server_status import server_status
from .slots import drop_slot, slot_connector
from .walreserve import DEFAULT_PREFIX

_LIKE_PREFIX = DEFAULT_PREFIX.replace("_", "\\_") + "%"


@dataclass(frozen=True)
class OurSlot:
    """A slot of ours as the source shows it."""

    name: str
    active: bool
    restart_lsn: Optional[str]
    wal_held_bytes: Optional[int]     # the source's WAL position - restart_lsn


def streams_without(slot: OurSlot, node_slot: str, server: Optional[dict]) -> bool:
    """The rule (a pure decision): `slot` is the node's, nothing streams through it, and
    the node (its `server` status, target/server_status.py) streams without it."""
    if slot.name != node_slot or slot.active or not server:
        return False
    receiver = server.get("wal_receiver") or {}
    return bool(server.get("in_recovery") and receiver.get("streaming")
                and receiver.get("slot_name") != slot.name)


def local_conninfo(pgdata: str) -> Optional[str]:
    """A connection string to the node's running server through the Unix socket its
    postmaster.pid names (None: not running, or no socket)."""
    if not server_running(pgdata):
        return None
    try:
        with open(os.path.join(pgdata, "postmaster.pid")) as handle:
            lines = handle.read().split("\n")
        port, socket_dir = int(lines[3]), lines[4].strip()
    except (OSError, ValueError, IndexError):
        return None
    if not socket_dir:
        return None
    return "host=%s port=%d dbname=postgres" % (_quoted(socket_dir), port)


def _quoted(value: str) -> str:
    return "'%s'" % value.replace("\\", "\\\\").replace("'", "\\'")


def node_status(pgdata: str, given: Optional[dict]) -> Optional[dict]:
    """The node's server status: the one read from target_server, else from its socket."""
    if given is not None:
        return given
    conninfo = local_conninfo(pgdata)
    return server_status(conninfo, connect_timeout=5) if conninfo else None


def list_our_slots(cur, node_slot: str) -> list:
    cur.execute(
        "SELECT slot_name, active, restart_lsn::text, "
        "pg_catalog.pg_wal_lsn_diff(CASE WHEN pg_catalog.pg_is_in_recovery() "
        "THEN pg_catalog.pg_last_wal_replay_lsn() ELSE pg_catalog.pg_current_wal_lsn() END, "
        "restart_lsn)::bigint "
        "FROM pg_catalog.pg_replication_slots WHERE slot_type = 'physical' "
        "AND (slot_name LIKE %s OR slot_name = %s) ORDER BY slot_name",
        (_LIKE_PREFIX, node_slot))
    return [OurSlot(name, active, lsn, None if held is None else max(0, int(held)))
            for name, active, lsn, held in cur.fetchall()]


def review_slots(conninfo: str, node_slot: str, server: Optional[dict], drop: bool,
                 connect_timeout: int = DEFAULT_CONNECT_TIMEOUT,
                 request_timeout: int = 0) -> dict:
    """{"slots": [...], "changed": bool, "warnings": [...]}: our slots on the source, the
    node's unused one dropped when `drop`. Opened as every session is (the connection
    factory: a frozen source is a timeout error, not a hang)."""
    source = slot_connector(conninfo, connect_timeout, request_timeout)
    slots, warnings, changed = [], [], False
    with source.session() as session:
        try:
            with session.cursor("review the replication slots") as cur:
                for slot in list_our_slots(cur, node_slot):
                    unused = streams_without(slot, node_slot, server)
                    dropped = False
                    if unused and drop:
                        try:
                            drop_slot(cur, slot.name)
                            dropped = changed = True
                        except psycopg2.Error as exc:
                            warnings.append("replication slot %s could not be dropped: %s"
                                            % (slot.name, source.scrub(exc)))
                    slots.append(dict(asdict(slot), unused=unused, dropped=dropped))
                    if not slot.active and not dropped:
                        warnings.append(_warning(slot, unused))
        except psycopg2.Error as exc:
            raise SourceError("could not list the replication slots on the source: %s"
                              % source.scrub(exc), code="source_query") from None
    return {"slots": slots, "changed": changed, "warnings": warnings}


def _warning(slot: OurSlot, unused: bool) -> str:
    held = "an unknown amount of" if slot.wal_held_bytes is None else \
        "%d MB (%d bytes) of" % (slot.wal_held_bytes >> 20, slot.wal_held_bytes)
    why = ("the node streams without it" if unused else
           "no standby streams through it")
    return ("replication slot %s (made by pgops.rewind) on the source is inactive and holds %s "
            "WAL: %s. Unless a standby is about to stream through it, drop it "
            "(pgops.rewind.pg_physical_slot state=absent, or SELECT "
            "pg_drop_replication_slot('%s')); the new primary's disk fills otherwise."
            % (slot.name, held, why, slot.name))
