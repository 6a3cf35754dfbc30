"""How the engine connects to the source: settings it adds only when the connection
string lacks them, TLS settings it refuses, and the watchdog that cuts off a request
a hung peer never answers (on a real socket whose peer stays silent)."""

import socket
import threading
import time

import pytest

from ansible_collections.pgops.rewind.plugins.module_utils.errors import RefusedError
from ansible_collections.pgops.rewind.plugins.module_utils.source.connection import (
    added_settings, check_tls_settings, connect_failure_code)
from ansible_collections.pgops.rewind.plugins.module_utils.runtime.timeouts import (
    TimeLimit, Watchdog, bounded)


def test_connect_timeout_and_keepalives_only_where_not_given():
    added = added_settings({"host": "db2"}, connect_timeout=30)
    assert added["connect_timeout"] == 30
    assert added["keepalives"] == "1" and added["keepalives_idle"] == "30"
    own = added_settings({"host": "db2", "connect_timeout": "7", "keepalives_idle": "5",
                          "fallback_application_name": "mine"}, connect_timeout=30)
    assert "connect_timeout" not in own and "keepalives_idle" not in own
    assert "fallback_application_name" not in own


def test_connect_timeout_never_outlasts_the_run():
    assert added_settings({"connect_timeout": "60"}, 30, time_left=9.2)["connect_timeout"] == 10
    assert added_settings({"connect_timeout": "0"}, 30, time_left=0.1)["connect_timeout"] == 2
    assert "connect_timeout" not in added_settings({"connect_timeout": "5"}, 30, time_left=100)


@pytest.mark.parametrize("mode", [None, "disable", "allow", "prefer"])
def test_a_ca_file_with_a_mode_that_does_not_verify_is_refused(mode):
    given = {"host": "db2", "sslrootcert": "/etc/ca.crt"}
    if mode:
        given["sslmode"] = mode
    with pytest.raises(RefusedError) as caught:
        check_tls_settings(given)
    assert caught.value.code == "source_tls_weak"


@pytest.mark.parametrize("given", [
    {"sslmode": "verify-full", "sslrootcert": "/etc/ca.crt"},
    {"sslmode": "verify-ca", "sslrootcert": "/etc/ca.crt"},
    {"sslmode": "require", "sslrootcert": "/etc/ca.crt"},
    {"sslmode": "prefer"}, {}])
def test_consistent_tls_settings_pass(given):
    check_tls_settings(given)


@pytest.mark.parametrize("text, code", [
    ('connection to server at "127.0.0.1", port 5432 failed: SSL error: certificate verify '
     'failed', "source_tls_failed"),
    ('server certificate for "127.0.0.1" does not match host name "db.invalid"',
     "source_tls_failed"),
    ('root certificate file "/nope/ca.crt" does not exist\nEither provide the file, use the '
     "system's trusted roots with sslrootcert=system, or change sslmode",
     "source_tls_files"),
    ('private key file "/k.key" has group or world access; file must have permissions u=rw '
     '(0600) or less', "source_tls_files"),
    ('FATAL:  pg_hba.conf rejects connection for host "127.0.0.1", user "postgres", database '
     '"postgres", no encryption', "source_tls_required"),
    ("timeout expired", "source_timeout"),
    ('connection to server at "127.0.0.1", port 1 failed: Connection refused',
     "source_unreachable"),
    ('FATAL:  password authentication failed for user "rewind"', "source_unreachable"),
])
def test_connect_failures_are_told_apart(text, code):
    assert connect_failure_code(text) == code


def test_time_limit_names_the_phase():
    limit = TimeLimit(0.05)
    limit.phase = "copy"
    limit.check()
    time.sleep(0.06)
    with pytest.raises(Exception) as caught:
        limit.check("read files from the source")
    assert caught.value.code == "timeout"
    assert "phase copy while trying to read files from the source" in caught.value.message
    TimeLimit(None).check()
    assert TimeLimit(0).remaining() is None
    assert bounded(None, 0, 5, 3) == 3 and bounded(None, 0) is None


def test_watchdog_ends_a_read_the_peer_never_answers():
    ours, theirs = socket.socketpair()
    try:
        dog = Watchdog()
        began = time.monotonic()
        with dog.guard(ours.fileno(), 0.5) as ticket:
            data = ours.recv(10)        # blocks: the peer sends nothing
        assert data == b"" and ticket.fired
        assert 0.4 < time.monotonic() - began < 5
    finally:
        ours.close()
        theirs.close()


def test_watchdog_leaves_a_request_that_answers_in_time():
    ours, theirs = socket.socketpair()
    try:
        dog = Watchdog()
        threading.Timer(0.1, lambda: theirs.send(b"ok")).start()
        with dog.guard(ours.fileno(), 2) as ticket:
            assert ours.recv(10) == b"ok"
        assert not ticket.fired
        time.sleep(2.2)                 # its expiry passes: the socket stays usable
        theirs.send(b"again")
        assert ours.recv(10) == b"again"
    finally:
        ours.close()
        theirs.close()
