"""pg_control as our parser reads it equals what the server itself reports, on every major."""

import os
import re

import pytest

from ansible_collections.pgops.rewind.plugins.module_utils.pg import controlfile as cf
from ansible_collections.pgops.rewind.plugins.module_utils.errors import ControlFileError
from ansible_collections.pgops.rewind.plugins.module_utils.pg.lsn import format_lsn, parse_lsn
from support.cluster import run_pg
from support.env import debian_tool


def _server_view(node):
    system = node.sql("SELECT pg_control_version, catalog_version_no, system_identifier "
                      "FROM pg_control_system()")[0]
    checkpoint = node.sql("SELECT checkpoint_lsn::text, redo_lsn::text, timeline_id, "
                          "prev_timeline_id, full_page_writes, next_xid, next_oid, "
                          "next_multixact_id::text::bigint, next_multi_offset::text::bigint, "
                          "oldest_xid::text::bigint, oldest_xid_dbid, "
                          "oldest_active_xid::text::bigint, oldest_multi_xid::text::bigint, "
                          "oldest_multi_dbid, oldest_commit_ts_xid::text::bigint, "
                          "newest_commit_ts_xid::text::bigint, "
                          "extract(epoch from checkpoint_time)::bigint "
                          "FROM pg_control_checkpoint()")[0]
    recovery = node.sql("SELECT min_recovery_end_lsn::text, min_recovery_end_timeline, "
                        "backup_start_lsn::text, backup_end_lsn::text, "
                        "end_of_backup_record_required FROM pg_control_recovery()")[0]
    with node.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT * FROM pg_control_init()")
        init = dict(zip([d.name for d in cur.description], cur.fetchone()))
    settings = dict(node.sql(
        "SELECT name, setting FROM pg_settings WHERE name IN ('wal_level', 'wal_log_hints', "
        "'max_connections', 'max_worker_processes', 'max_wal_senders', 'max_prepared_transactions', "
        "'max_locks_per_transaction', 'track_commit_timestamp')"))
    return system, checkpoint, recovery, init, settings


def _epoch_xid(value: int) -> str:
    return "%d:%d" % (value >> 32, value & 0xFFFFFFFF)


def test_control_file_matches_server(bed, major):
    node = bed.cluster("node", major).init(checksums=(major % 2 == 0), wal_log_hints=(major % 2 == 1))
    node.start()
    node.sql("CREATE TABLE t AS SELECT g FROM generate_series(1, 10000) g")
    node.checkpoint()
    node.stop()
    control = cf.read_control_file(str(node.datadir / "global" / "pg_control"))
    assert control.state == cf.DB_SHUTDOWNED and control.cleanly_shut_down
    node.start()   # a clean start writes no checkpoint: the server now reports the file's values
    system, checkpoint, recovery, init, settings = _server_view(node)

    assert control.major == major
    assert (control.control_version, control.catversion, control.system_identifier) == system
    cp = control.checkpoint_copy
    assert format_lsn(control.checkpoint) == checkpoint[0]
    assert format_lsn(cp.redo) == checkpoint[1]
    assert (cp.timeline, cp.prev_timeline, cp.full_page_writes) == checkpoint[2:5]
    assert _epoch_xid(cp.next_xid) == checkpoint[5]
    assert (cp.next_oid, cp.next_multi, cp.next_multi_offset, cp.oldest_xid, cp.oldest_xid_db,
            cp.oldest_active_xid, cp.oldest_multi, cp.oldest_multi_db, cp.oldest_commit_ts_xid,
            cp.newest_commit_ts_xid, cp.time) == checkpoint[6:]
    assert (format_lsn(control.min_recovery_point), control.min_recovery_point_tli,
            format_lsn(control.backup_start_point), format_lsn(control.backup_end_point),
            control.backup_end_required) == recovery
    assert control.max_align == init["max_data_alignment"]
    assert control.blcksz == init["database_block_size"]
    assert control.relseg_size == init["blocks_per_segment"]
    assert control.xlog_blcksz == init["wal_block_size"]
    assert control.xlog_seg_size == init["bytes_per_wal_segment"]
    assert control.name_data_len == init["max_identifier_length"]
    assert control.index_max_keys == init["max_index_columns"]
    assert control.toast_max_chunk_size == init["max_toast_chunk_size"]
    assert control.loblksize == init["large_object_chunk_size"]
    assert control.float8_by_val == init["float8_pass_by_value"]
    assert control.data_checksum_version == init["data_page_checksum_version"]
    if "float4_pass_by_value" in init:
        assert control.float4_by_val == init["float4_pass_by_value"]
    if "default_char_signedness" in init:
        assert control.default_char_signedness == init["default_char_signedness"]
    assert control.wal_log_hints == (settings["wal_log_hints"] == "on")
    assert cf.WAL_LEVELS[control.wal_level] == settings["wal_level"]
    assert control.max_connections == int(settings["max_connections"])
    assert control.max_worker_processes == int(settings["max_worker_processes"])
    assert control.max_prepared_xacts == int(settings["max_prepared_transactions"])
    assert control.max_locks_per_xact == int(settings["max_locks_per_transaction"])
    assert control.track_commit_timestamp == (settings["track_commit_timestamp"] == "on")
    if control.max_wal_senders is not None:
        assert control.max_wal_senders == int(settings["max_wal_senders"])
    assert control.protects_hint_bits
    assert control.float_format == 1234567.0

    # While running, the file says "in production"; it still parses and verifies.
    running = cf.read_control_file(str(node.datadir / "global" / "pg_control"))
    assert running.state == cf.DB_IN_PRODUCTION and not running.cleanly_shut_down


def test_standby_control_file(bed, major):
    primary, standby = bed.primary_and_standby(major)
    primary.sql("CREATE TABLE t AS SELECT g FROM generate_series(1, 1000) g")
    primary.wait_for_replay(standby)
    standby.checkpoint()   # a restartpoint
    before = standby.sql("SELECT min_recovery_end_lsn::text, min_recovery_end_timeline "
                         "FROM pg_control_recovery()")[0]
    standby.stop()
    control = cf.read_control_file(str(standby.datadir / "global" / "pg_control"))
    assert control.state == cf.DB_SHUTDOWNED_IN_RECOVERY and control.cleanly_shut_down
    assert control.min_recovery_point >= parse_lsn(before[0])
    assert control.min_recovery_point_tli == before[1] == 1
    assert control.timeline == 1


def test_matches_pg_controldata_on_15(bed):
    node = bed.cluster("node", 15).init()
    node.start()
    node.sql("CREATE TABLE t AS SELECT g FROM generate_series(1, 1000) g")
    node.stop()
    out = run_pg([debian_tool("pg_controldata"), node.datadir]).stdout
    fields = dict(re.findall(r"^([^:\n]+):\s+(.*)$", out, re.M))
    control = cf.read_control_file(str(node.datadir / "global" / "pg_control"))
    cp = control.checkpoint_copy
    expected = {
        "pg_control version number": str(control.control_version),
        "Catalog version number": str(control.catversion),
        "Database system identifier": str(control.system_identifier),
        "Database cluster state": control.state_name,
        "Latest checkpoint location": format_lsn(control.checkpoint),
        "Latest checkpoint's REDO location": format_lsn(cp.redo),
        "Latest checkpoint's TimeLineID": str(cp.timeline),
        "Latest checkpoint's PrevTimeLineID": str(cp.prev_timeline),
        "Latest checkpoint's full_page_writes": "on" if cp.full_page_writes else "off",
        "Latest checkpoint's NextXID": _epoch_xid(cp.next_xid),
        "Latest checkpoint's NextOID": str(cp.next_oid),
        "Latest checkpoint's NextMultiXactId": str(cp.next_multi),
        "Latest checkpoint's NextMultiOffset": str(cp.next_multi_offset),
        "Latest checkpoint's oldestXID": str(cp.oldest_xid),
        "Latest checkpoint's oldestXID's DB": str(cp.oldest_xid_db),
        "Latest checkpoint's oldestActiveXID": str(cp.oldest_active_xid),
        "Latest checkpoint's oldestMultiXid": str(cp.oldest_multi),
        "Latest checkpoint's oldestMulti's DB": str(cp.oldest_multi_db),
        "Fake LSN counter for unlogged rels": format_lsn(control.unlogged_lsn),
        "Minimum recovery ending location": format_lsn(control.min_recovery_point),
        "Min recovery ending loc's timeline": str(control.min_recovery_point_tli),
        "Backup start location": format_lsn(control.backup_start_point),
        "Backup end location": format_lsn(control.backup_end_point),
        "wal_level setting": cf.WAL_LEVELS[control.wal_level],
        "wal_log_hints setting": "on" if control.wal_log_hints else "off",
        "max_connections setting": str(control.max_connections),
        "max_worker_processes setting": str(control.max_worker_processes),
        "max_wal_senders setting": str(control.max_wal_senders),
        "max_prepared_xacts setting": str(control.max_prepared_xacts),
        "max_locks_per_xact setting": str(control.max_locks_per_xact),
        "Maximum data alignment": str(control.max_align),
        "Database block size": str(control.blcksz),
        "Blocks per segment of large relation": str(control.relseg_size),
        "WAL block size": str(control.xlog_blcksz),
        "Bytes per WAL segment": str(control.xlog_seg_size),
        "Maximum length of identifiers": str(control.name_data_len),
        "Maximum columns in an index": str(control.index_max_keys),
        "Maximum size of a TOAST chunk": str(control.toast_max_chunk_size),
        "Size of a large-object chunk": str(control.loblksize),
        "Data page checksum version": str(control.data_checksum_version),
        "Mock authentication nonce": control.mock_authentication_nonce.hex(),
    }
    for name, value in expected.items():
        assert fields[name].strip() == value, name


def test_bad_crc_and_unknown_version_are_clear_errors(tmp_path, bed):
    node = bed.cluster("node", 15).init()
    data = bytearray((node.datadir / "global" / "pg_control").read_bytes())
    good = cf.parse_control_file(bytes(data))
    assert good.major == 15

    flipped = bytearray(data)
    flipped[100] ^= 0x40
    with pytest.raises(ControlFileError) as err:
        cf.parse_control_file(bytes(flipped), "target global/pg_control")
    assert err.value.code == "control_crc"
    assert "target global/pg_control" in str(err.value)

    unknown = bytearray(data)
    unknown[8:12] = (1999).to_bytes(4, "little")
    with pytest.raises(ControlFileError) as err:
        cf.parse_control_file(bytes(unknown), "x/global/pg_control")
    assert err.value.code == "unsupported_version" and "1999" in str(err.value)

    with pytest.raises(ControlFileError) as err:
        cf.parse_control_file(bytes(data[:4000]), "short")
    assert err.value.code == "control_size"

    not_pgdata = tmp_path / "empty"
    not_pgdata.mkdir()
    with pytest.raises(ControlFileError) as err:
        cf.read_control_file(os.path.join(not_pgdata, "global", "pg_control"))
    assert err.value.code == "not_a_data_directory"


def test_updated_control_file_round_trips(bed):
    node = bed.cluster("node", 18).init()
    control = cf.read_control_file(str(node.datadir / "global" / "pg_control"))
    new = cf.updated_control_file(control, state=cf.DB_IN_ARCHIVE_RECOVERY,
                                  min_recovery_point=0x3000028, min_recovery_point_tli=2)
    parsed = cf.parse_control_file(new)
    assert parsed.state == cf.DB_IN_ARCHIVE_RECOVERY
    assert (parsed.min_recovery_point, parsed.min_recovery_point_tli) == (0x3000028, 2)
    assert parsed.system_identifier == control.system_identifier
    assert parsed.checkpoint_copy == control.checkpoint_copy
    with pytest.raises(ValueError):
        cf.updated_control_file(control, checkpoint_copy=None)
