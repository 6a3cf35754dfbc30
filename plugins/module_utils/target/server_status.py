# -*- coding: utf-8 -*-
# Copyright: pgops.rewind developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Is a running server a standby, and is it streaming? Asked over libpq, read only.

The role uses this to tell a node that is already a healthy standby of the new
primary (nothing to do) from one that must be stopped and rewound, and to wait
after the restart until the rewound node streams.
"""

from __future__ import annotations

from typing import Optional

from ..errors import RewindError
from ..runtime import faults
from ..source.connection import ServerConnector, psycopg2
from ..pg.lsn import parse_lsn

# Each request of the status check; a server that does not answer is reported, not waited on.
STATUS_REQUEST_TIMEOUT = 10


def server_status(conninfo: str, connect_timeout: int = 10,
                  request_timeout: int = STATUS_REQUEST_TIMEOUT) -> dict:
    """{running, in_recovery, timeline, wal_position, wal_receiver{...}} of the server at
    `conninfo`; running is False (with `error` and `error_code`) when it cannot be
    reached, True with them when it stopped answering. Opened by the connection factory
    (source/connection.py), so a frozen server cannot hang the check."""
    server = ServerConnector(conninfo, connect_timeout, request_timeout,
                             peer="the target's server", timeout_option="status check",
                             read_only=True)
    try:
        session = server.session()
    except RewindError as exc:
        return {"running": False, "error": exc.message, "error_code": exc.code}
    with session:
        faults.moment("server status")
        try:
            return _status(session.cursor("read its status"))
        except RewindError as exc:
            return {"running": True, "error": exc.message, "error_code": exc.code}
        except psycopg2.Error as exc:
            return {"running": True, "error": server.scrub(exc), "error_code": "source_query"}


def _status(cur) -> dict:
    with cur:
        cur.execute("SELECT pg_catalog.pg_is_in_recovery(), "
                    "current_setting('server_version_num')::int")
        in_recovery, version = cur.fetchone()
        status = {"running": True, "in_recovery": in_recovery,
                  "server_version_num": version, "wal_receiver": None}
        status.update(_configuration_paths(cur))
        if not in_recovery:
            cur.execute("SELECT pg_catalog.pg_current_wal_lsn()::text, "
                        "pg_catalog.pg_walfile_name(pg_catalog.pg_current_wal_lsn())")
            lsn, name = cur.fetchone()
            status.update(wal_position=lsn, timeline=int(name[:8], 16))
            return status
        cur.execute("SELECT pg_catalog.pg_last_wal_replay_lsn()::text, "
                    "pg_catalog.pg_last_wal_receive_lsn()::text")
        replay, receive = cur.fetchone()
        status.update(wal_position=replay, received_position=receive)
        cur.execute("SELECT status, received_tli, sender_host, sender_port, slot_name "
                    "FROM pg_catalog.pg_stat_wal_receiver")
        row = cur.fetchone()
        if row:
            status["wal_receiver"] = {
                "status": row[0], "timeline": row[1], "sender_host": row[2],
                "sender_port": row[3], "slot_name": row[4],
                "streaming": row[0] == "streaming"}
            status["timeline"] = row[1]
        return status


def _configuration_paths(cur) -> dict:
    """{config_file, hba_file, ident_file} as the server runs with them (superusers and
    pg_read_all_settings may read them; {} otherwise)."""
    try:
        cur.execute("SELECT current_setting('config_file'), current_setting('hba_file'), "
                    "current_setting('ident_file')")
    except psycopg2.Error:
        return {}
    return dict(zip(("config_file", "hba_file", "ident_file"), cur.fetchone()))


def written_past_control(status: Optional[dict]) -> int:
    """Where a running primary is in its WAL (0: not running, a standby, or unknown): what
    it wrote after its latest checkpoint, which pg_control does not record, a rewind
    undoes too. A standby's pg_control (minRecoveryPoint) is left as it is."""
    status = status or {}
    if not status.get("running") or status.get("in_recovery") or not status.get("wal_position"):
        return 0
    return parse_lsn(status["wal_position"])


def replay_lag_bytes(standby: dict, primary_position: str):
    """Bytes the standby still has to replay to reach `primary_position`."""
    if not standby.get("wal_position") or not primary_position:
        return None
    return max(0, parse_lsn(primary_position) - parse_lsn(standby["wal_position"]))
