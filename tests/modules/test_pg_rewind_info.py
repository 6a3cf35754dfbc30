"""pgops.rewind.pg_rewind_info through ansible, as the data directory's owner."""

import pytest

from support.ansible import run_module
from support.scenarios import failover

from support.env import TEST_PASSWORD as PASSWORD


def _history_switchpoint(node):
    return (node.datadir / "pg_wal" / "00000002.history").read_text().split("\t")[1]


@pytest.mark.parametrize("major", [11, 15, 18])
def test_reports_a_needed_rewind(bed, collection, major):
    fo = failover(bed, major)
    result = run_module("pg_rewind_info", {"target_pgdata": str(fo.old_primary.datadir),
                                           "source_server": fo.new_primary.conninfo()})
    assert not result.get("failed"), result
    assert result["changed"] is False
    assert result["rewind_required"] is True and result["reason"] == "diverged"
    assert result["divergence"] == {"timeline": 1, "lsn": _history_switchpoint(fo.new_primary)}
    assert result["target"]["pg_major"] == major and result["target"]["state"] == "shut down"
    assert result["source"]["pg_major"] == major
    assert result["source_timeline"] == 2 and result["target_timeline"] == 1
    assert result["changed_blocks"] > 0 and result["wal_bytes"] > 0 and result["wal_records"] > 0
    assert result["last_common_checkpoint"]["timeline"] == 1


def test_local_source_and_check_mode(bed, collection):
    fo = failover(bed, 15)
    fo.new_primary.stop()
    result = run_module("pg_rewind_info", {"target_pgdata": str(fo.old_primary.datadir),
                                           "source_pgdata": str(fo.new_primary.datadir)},
                        check=True)
    assert not result.get("failed"), result
    assert result["rewind_required"] is True


def test_without_source_only_control_data(bed, collection):
    node = bed.cluster("node", 16).init(checksums=False, wal_log_hints=True)
    node.start()   # pg_control records wal_log_hints at server start
    node.stop()
    result = run_module("pg_rewind_info", {"target_pgdata": str(node.datadir)})
    assert not result.get("failed"), result
    assert result["target"]["wal_log_hints"] is True
    assert result["target"]["data_checksums"] is False
    assert "rewind_required" not in result


def test_not_a_data_directory(bed, collection):
    result = run_module("pg_rewind_info", {"target_pgdata": str(bed.home)})
    assert result["failed"] and result["error_code"] == "not_a_data_directory"
    assert "Traceback" not in result["msg"] and "not a PostgreSQL data directory" in result["msg"]


def test_wrong_password_leaks_nothing(bed, collection):
    node = bed.cluster("node", 15).init()
    with open(node.datadir / "pg_hba.conf", "w") as hba:
        hba.write("local all all trust\nhost all postgres 127.0.0.1/32 trust\n"
                  "host all all 127.0.0.1/32 scram-sha-256\n")
    node.start()
    node.sql("CREATE ROLE rewinder LOGIN PASSWORD 'the-right-one'")
    conninfo = "host=127.0.0.1 port=%d user=rewinder dbname=postgres password=%s" % (
        node.port, PASSWORD)
    result = run_module("pg_rewind_info", {"target_pgdata": str(node.datadir),
                                           "source_server": conninfo})
    assert result["failed"] and result["error_code"] == "source_unreachable"
    assert "password authentication failed" in result["msg"]
    assert PASSWORD not in result["_stdout"] + result["_stderr"]
