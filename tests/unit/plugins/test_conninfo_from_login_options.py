"""community.postgresql's connection options beside the connection string: each one
overrides the string's key, connect_params last; values are quoted for libpq so any
password arrives as given; a URI is not merged; results show no password."""

import pytest

from ansible_collections.pgops.rewind.plugins.module_utils.module_support import (
    TARGET_PREFIX, connection_shown, engine_params, server_conninfo)
from ansible_collections.pgops.rewind.plugins.module_utils.standby.quoting import parse_conninfo

HOSTILE = "it's a \\back\\slash = 'x' é"


def test_no_option_keeps_the_string_as_given():
    assert server_conninfo("host=db2  user=rewind", {}) == "host=db2  user=rewind"
    assert server_conninfo(None, {"login_host": None}) is None
    assert server_conninfo("postgresql://db2/postgres", {}) == "postgresql://db2/postgres"


def test_options_alone_build_a_string_libpq_reads_back():
    built = server_conninfo(None, {"login_host": "db2", "port": 5433, "login_user": "rewind",
                                   "login_password": HOSTILE, "login_db": "postgres",
                                   "ssl_mode": "verify-full", "ca_cert": "/etc/ca b.crt",
                                   "ssl_cert": "/c", "ssl_key": "/k"})
    assert parse_conninfo(built) == {"host": "db2", "port": "5433", "user": "rewind",
                                     "password": HOSTILE, "dbname": "postgres",
                                     "sslmode": "verify-full", "sslrootcert": "/etc/ca b.crt",
                                     "sslcert": "/c", "sslkey": "/k"}
    psycopg2 = pytest.importorskip("psycopg2")
    assert psycopg2.extensions.parse_dsn(built)["password"] == HOSTILE


def test_options_override_the_strings_keys_and_connect_params_win():
    built = server_conninfo("host=db2 user=old password='x y' application_name=a",
                            {"login_user": "rewind", "login_password": HOSTILE,
                             "connect_params": {"application_name": "b", "user": "last"}})
    assert parse_conninfo(built) == {"host": "db2", "user": "last", "password": HOSTILE,
                                     "application_name": "b"}


def test_the_socket_serves_a_local_host_only():
    assert parse_conninfo(server_conninfo(None, {"login_unix_socket": "/run/pg"})) == \
        {"host": "/run/pg"}
    assert parse_conninfo(server_conninfo(None, {"login_host": "localhost",
                                                 "login_unix_socket": "/run/pg"})) == \
        {"host": "/run/pg"}
    assert parse_conninfo(server_conninfo(None, {"login_host": "db2",
                                                 "login_unix_socket": "/run/pg"})) == \
        {"host": "db2"}


def test_target_options_are_prefixed_and_leave_the_source_alone():
    params = {"login_host": "db2", "target_login_host": "db1", "target_port": 5432}
    assert parse_conninfo(server_conninfo(None, params, TARGET_PREFIX)) == \
        {"host": "db1", "port": "5432"}
    assert parse_conninfo(server_conninfo(None, params)) == {"host": "db2"}
    assert engine_params(dict(params, target_pgdata="/d")) == {"target_pgdata": "/d"}


def test_a_uri_is_not_merged():
    with pytest.raises(ValueError, match="URI"):
        server_conninfo("postgresql://db2/postgres", {"login_password": "x"})


def test_results_show_where_never_the_password():
    built = server_conninfo("host=db2 port=5433", {"login_user": "rewind",
                                                   "login_password": HOSTILE})
    assert connection_shown(built) == {"host": "db2", "port": 5433, "user": "rewind",
                                       "dbname": None}
    assert connection_shown("postgresql://rewind:secret@db2:5433/postgres?sslmode=require") == \
        {"host": "db2", "port": 5433, "user": "rewind", "dbname": "postgres"}
    assert connection_shown(None) is None
