"""Slot sessions (pg_physical_slot, the rewind's WAL reservation) connect as the source
is connected: the connection string's own connect_timeout wins, keepalives are on, a
certificate check that would not verify is refused before any connection is tried, and
a failure carries the same error code a source connection would."""

import pytest

from ansible_collections.pgops.rewind.plugins.module_utils.errors import RewindError
from ansible_collections.pgops.rewind.plugins.module_utils.standby import slots


class _Refused(slots.psycopg2.OperationalError):
    pass


@pytest.fixture
def attempts(monkeypatch):
    seen = []

    def connect(conninfo, **settings):
        seen.append((conninfo, settings))
        raise _Refused("connection to server failed: SSL error: certificate verify failed")
    monkeypatch.setattr(slots.psycopg2, "connect", connect)
    return seen


def test_settings_added_only_where_the_connection_string_has_none(attempts):
    with pytest.raises(RewindError) as err:
        slots.connect("host=db2 connect_timeout=4 password=s3cret", 30, 11)
    assert err.value.code == "source_tls_failed" and "s3cret" not in str(err.value)
    (_conninfo, settings), = attempts
    assert "connect_timeout" not in settings and settings["keepalives"] == "1"
    assert settings["options"] == "-c statement_timeout=11s"
    with pytest.raises(RewindError):
        slots.connect("host=db2", 30, time_left=5)
    assert attempts[1][1]["connect_timeout"] == 5


def test_a_certificate_that_would_not_be_verified_is_refused_first(attempts):
    with pytest.raises(RewindError) as err:
        slots.ensure_physical_slot("host=db2 sslrootcert=/etc/ca.crt sslmode=prefer", "s1")
    assert err.value.code == "source_tls_weak" and attempts == []
