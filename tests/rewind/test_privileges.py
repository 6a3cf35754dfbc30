"""A non-superuser source role granted just the four file-access functions is enough,
over several connections at once, on a primary and on a hot standby (plus REPLICATION
for the slot that reserves the source's WAL, unless reserve_wal is off)."""

import contextlib

import psycopg2
import pytest

from support.rewound import assert_follows_and_matches, rewind
from support.scenarios import Failover, diverge_old_primary, failover, seed

GRANTS = """
CREATE ROLE rewind_user LOGIN;
GRANT EXECUTE ON FUNCTION pg_catalog.pg_ls_dir(text, boolean, boolean) TO rewind_user;
GRANT EXECUTE ON FUNCTION pg_catalog.pg_stat_file(text, boolean) TO rewind_user;
GRANT EXECUTE ON FUNCTION pg_catalog.pg_read_binary_file(text) TO rewind_user;
GRANT EXECUTE ON FUNCTION pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean) TO rewind_user;
"""


def _conninfo(node, user="rewind_user"):
    return "host=127.0.0.1 port=%d user=%s dbname=postgres" % (node.port, user)


@pytest.mark.parametrize("major", [11, 13, 15, 18])
def test_non_superuser_role_over_parallel_connections(bed, collection, major):
    fo = failover(bed, major)
    fo.new_primary.sql(GRANTS)
    result = rewind(fo, source_server=_conninfo(fo.new_primary), parallel=3,
                    primary_conninfo=fo.new_primary.conninfo(), reserve_wal=False)
    assert not result["failed"], result.get("msg")
    assert result["bytes_fetched"] > 0
    assert_follows_and_matches(fo)


def test_missing_grants_are_named(bed, collection):
    fo = failover(bed, 16)
    fo.new_primary.sql("CREATE ROLE weak LOGIN")
    result = rewind(fo, source_server=_conninfo(fo.new_primary, "weak"),
                    primary_conninfo=fo.new_primary.conninfo())
    assert result["failed"] and result["error_code"] == "source_permission"
    assert "pg_read_binary_file" in result["hint"]


@pytest.mark.parametrize("major", [12, 17])
def test_non_superuser_on_a_hot_standby_source(bed, collection, major):
    a, b = bed.primary_and_standby(major)
    a.sql(GRANTS)                       # replicated to the standby b
    a.sql("ALTER ROLE rewind_user REPLICATION")     # the slot on b reserves b's WAL
    seed(a)
    c = bed.adopt(b.create_standby("cascade"))
    a.wait_for_replay(b)
    b.wait_for_replay(c)
    c.promote()
    diverge_old_primary(c)
    c.stop()
    fo = Failover(c, b)
    # c was promoted from b's (still current) timeline 1: by its history c is the newer
    # primary, and returning it to the older timeline is a deliberate choice (issue 19).
    refused = rewind(fo, source_server=_conninfo(b), parallel=2, primary_conninfo=b.conninfo())
    assert refused["failed"] and refused["error_code"] == "wrong_direction", refused
    result = rewind(fo, source_server=_conninfo(b), parallel=2, primary_conninfo=b.conninfo(),
                    allow_older_source=True)
    assert not result["failed"], result.get("msg")
    assert result["slot"]["created"]
    assert_follows_and_matches(fo, writer=a)


# md5 is not available everywhere (FIPS-mode hosts, builds without it, roles where it is
# revoked): the identical-file check must not need it, nor anything outside GRANTS.
NO_MD5 = "REVOKE EXECUTE ON FUNCTION pg_catalog.md5(bytea), pg_catalog.md5(text) FROM PUBLIC;"
NO_SHA256 = "REVOKE EXECUTE ON FUNCTION pg_catalog.sha256(bytea) FROM PUBLIC;"


def _warnings(result) -> str:
    """What Ansible printed as warnings (they leave the result for the output)."""
    return " ".join((result["_stdout"] + result["_stderr"]).split())


def _refused_to(node, query):
    with pytest.raises(psycopg2.Error, match="permission denied"):
        with contextlib.closing(node.connect(user="rewind_user")) as conn, conn.cursor() as cur:
            cur.execute(query)


def test_documented_grants_without_md5(bed, collection, major):
    fo = failover(bed, major)
    fo.new_primary.sql(GRANTS + NO_MD5)
    _refused_to(fo.new_primary, "SELECT md5('x'::bytea)")
    result = rewind(fo, source_server=_conninfo(fo.new_primary),
                    primary_conninfo=fo.new_primary.conninfo(), reserve_wal=False)
    assert not result["failed"], result.get("msg")
    assert "could not checksum" not in _warnings(result)
    assert result["files_identical"] > 0, "the identical-file check ran and found some"
    assert_follows_and_matches(fo)


@pytest.mark.parametrize("major", [11, 18])
def test_refused_digest_means_copying_not_failing(bed, collection, major):
    fo = failover(bed, major)
    fo.new_primary.sql(GRANTS + NO_MD5 + NO_SHA256)
    _refused_to(fo.new_primary, "SELECT sha256('x'::bytea)")
    result = rewind(fo, source_server=_conninfo(fo.new_primary),
                    primary_conninfo=fo.new_primary.conninfo(), reserve_wal=False)
    assert not result["failed"], result.get("msg")
    assert result["files_identical"] == 0
    warnings = _warnings(result)
    assert "[WARNING]: could not checksum" in warnings and "sha256" in warnings, warnings
    assert_follows_and_matches(fo)
