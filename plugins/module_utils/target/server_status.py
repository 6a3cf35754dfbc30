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

from ..errors import SourceError
from ..source.libpq import HAS_PSYCOPG2, psycopg2, secrets_of
from ..pg.lsn import parse_lsn


def server_status(conninfo: str, connect_timeout: int = 10) -> dict:
    """{running, in_recovery, timeline, wal_position, wal_receiver{...}} of the server at
    `conninfo`; running is False (with `error`) when it cannot be reached."""
    if not HAS_PSYCOPG2:
        raise SourceError("psycopg2 is needed to ask a running server for its status.",
                          code="missing_psycopg2")
    try:
        conn = psycopg2.connect(conninfo, connect_timeout=connect_timeout,
                                fallback_application_name="pgops_rewind")
    except psycopg2.Error as exc:
        text = str(exc).strip()
        for secret in secrets_of(conninfo):
            text = text.replace(secret, "********")
        return {"running": False, "error": text}
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
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
            cur.execute("SELECT status, received_tli, sender_host, sender_port, slot_name, "
                        "conninfo FROM pg_catalog.pg_stat_wal_receiver")
            row = cur.fetchone()
            if row:
                receiver_conninfo = row[5] or ""
                for secret in secrets_of(receiver_conninfo):
                    receiver_conninfo = receiver_conninfo.replace(secret, "********")
                status["wal_receiver"] = {
                    "status": row[0], "timeline": row[1], "sender_host": row[2],
                    "sender_port": row[3], "slot_name": row[4],
                    "streaming": row[0] == "streaming"}
                status["timeline"] = row[1]
            return status
    except psycopg2.Error as exc:
        return {"running": True, "error": str(exc).strip()}
    finally:
        conn.close()


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
