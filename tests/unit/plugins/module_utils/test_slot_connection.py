"""Every session the engine opens goes through one connection factory
(source/connection.py): the connection string's own connect_timeout wins (capped by the
run's time left), keepalives are on, a certificate check that would not verify is
refused before any connection is tried, a failure carries the same error code whatever
the session is for, and no password reaches a message."""

import pytest

from ansible_collections.pgops.rewind.plugins.module_utils.errors import RewindError
from ansible_collections.pgops.rewind.plugins.module_utils.runtime.timeouts import TimeLimit
from ansible_collections.pgops.rewind.plugins.module_utils.source import connection
from ansible_collections.pgops.rewind.plugins.module_utils.standby import slots
from ansible_collections.pgops.rewind.plugins.module_utils.target.server_status import (
    server_status)


class _Refused(connection.psycopg2.OperationalError):
    pass


@pytest.fixture
def attempts(monkeypatch):
    seen = []

    def connect(conninfo, **settings):
        seen.append((conninfo, settings))
        raise _Refused("connection to server failed: SSL error: certificate verify failed "
                       "(password s3cret)")
    monkeypatch.setattr(connection.psycopg2, "connect", connect)
    return seen


def test_settings_added_only_where_the_connection_string_has_none(attempts):
    with pytest.raises(RewindError) as err:
        slots.slot_connector("host=db2 connect_timeout=4 password=s3cret", 30, 11).session()
    assert err.value.code == "source_tls_failed" and "s3cret" not in str(err.value)
    (_conninfo, settings), = attempts
    assert "connect_timeout" not in settings and settings["keepalives"] == "1"
    with pytest.raises(RewindError):
        slots.slot_connector("host=db2", 30, time_limit=TimeLimit(5)).session()
    assert attempts[1][1]["connect_timeout"] == 5
    with pytest.raises(RewindError):
        slots.slot_connector("host=db2 connect_timeout=60", 30, max_connect_seconds=5).session()
    assert attempts[2][1]["connect_timeout"] == 5


def test_a_certificate_that_would_not_be_verified_is_refused_first(attempts):
    with pytest.raises(RewindError) as err:
        slots.ensure_physical_slot("host=db2 sslrootcert=/etc/ca.crt sslmode=prefer", "s1")
    assert err.value.code == "source_tls_weak" and attempts == []


def test_the_status_check_connects_through_the_factory(attempts):
    status = server_status("host=db1 password=s3cret")
    assert status["running"] is False and status["error_code"] == "source_tls_failed"
    assert "s3cret" not in status["error"] and attempts[0][1]["keepalives"] == "1"


def test_one_scrubbing_for_strings_uris_and_given_secrets():
    text = "user=a password='p w' x postgresql://u:uri%40pw@h/db token=t0k"
    out = connection.scrubbed(text, "password='p w'", "postgresql://u:uri%40pw@h/db",
                              secrets=["t0k"])
    assert "uri%40pw" not in out and "t0k" not in out and "'p w'" not in out.replace(
        "'********'", "")
