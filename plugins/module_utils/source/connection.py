# -*- coding: utf-8 -*-
# Copyright: pgops.rewind developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""How the engine reaches a PostgreSQL server: the one connection factory.

Every session the engine opens -- to the source for the rewind, its catalog names and
the clone, to the new primary for a replication slot, to the target's own server for
its status -- is opened by a `ServerConnector` here, so each gets the same protection:
the settings added when the connection string does not name them (connect timeout, TCP
keepalives), the TLS settings refused as unsafe, the session's statement_timeout, the
watchdog that cuts a request a frozen server never answers (runtime/timeouts.py), an
error code that tells TLS trouble from an unreachable server from a timeout, and no
password in any message (`scrubbed`).
"""

from __future__ import annotations

import re
from typing import Optional

from ..errors import RefusedError, SourceError
from ..runtime.timeouts import TimeLimit, Watchdog, bounded

try:
    import psycopg2
    import psycopg2.extensions
    HAS_PSYCOPG2 = True
except ImportError:  # pragma: no cover - depends on the host
    psycopg2 = None
    HAS_PSYCOPG2 = False

DEFAULT_CONNECT_TIMEOUT = 30
DEFAULT_SOURCE_TIMEOUT = 300
# A dead peer (host down, cable cut) is noticed within about a minute of silence.
KEEPALIVES = (("keepalives", "1"), ("keepalives_idle", "30"), ("keepalives_interval", "10"),
              ("keepalives_count", "3"))
_VERIFYING_MODES = ("verify-ca", "verify-full")
_TLS_FILE_KEYS = ("sslrootcert", "sslcert", "sslkey", "sslcrl")


def added_settings(given: dict, connect_timeout: int = DEFAULT_CONNECT_TIMEOUT,
                   time_left=None) -> dict:
    """Connection settings to add to `given` (the parsed connection string): only those it
    does not name itself, except that no connect timeout may outlast the run's own."""
    added = {}
    named = _seconds(given.get("connect_timeout")) if "connect_timeout" in given else None
    wanted = connect_timeout if named is None else named
    if time_left is not None:
        cap = max(2, int(time_left + 0.999))    # libpq takes whole seconds, at least 2
        wanted = min(wanted, cap) if wanted else cap
    if wanted != named:
        added["connect_timeout"] = wanted
    for key, value in KEEPALIVES:
        if key not in given:
            added[key] = value
    if "fallback_application_name" not in given:
        added["fallback_application_name"] = "pgops_rewind"
    return added


def _seconds(value):
    try:
        return int(value or 0)
    except ValueError:
        return None             # libpq will say what is wrong with it


def check_tls_settings(given: dict, peer: str = "the source") -> None:
    """A certificate to verify against, with an sslmode that does not verify, is a
    mistake that costs the protection: libpq's default (prefer) falls back to an
    unencrypted, unverified connection when the certificate does not verify."""
    mode = given.get("sslmode") or "prefer"
    if given.get("sslrootcert") and mode not in _VERIFYING_MODES + ("require",):
        raise RefusedError(
            "the connection to %s names sslrootcert but sslmode is %s, which does not verify "
            "the server's certificate (and may fall back to an unencrypted connection)."
            % (peer, mode),
            hint="Set sslmode=verify-full (or verify-ca) in the source connection string; with "
                 "the role, pg_rewind_source_sslmode.", code="source_tls_weak")


# libpq's words for each kind of failure (its messages differ a little between versions).
_TLS_FILES = re.compile(
    r"root certificate file|could not read root certificate|certificate file|"
    r"private key file|could not load private key|certificate present, but not private key|"
    r"could not open certificate|could not read certificate|SSL certificate revocation list|"
    r"sslrootcert=system", re.I)
_TLS_REQUIRED = re.compile(r"pg_hba\.conf.*no encryption|no pg_hba\.conf entry.*no encryption",
                           re.I | re.S)
_TLS_FAILED = re.compile(
    r"certificate verify failed|does not match host name|server certificate|SSL error|"
    r"alert (unknown ca|bad certificate|certificate)|server does not support SSL|"
    r"certificate authentication failed|requires a valid client certificate|"
    r"could not get server's host name", re.I)
_TIMED_OUT = re.compile(r"timeout expired|timed out", re.I)


def connect_failure_code(text: str) -> str:
    """The error code for a failed connection attempt, from libpq's message."""
    if _TLS_FILES.search(text):
        return "source_tls_files"
    if _TLS_REQUIRED.search(text):
        return "source_tls_required"
    if _TLS_FAILED.search(text):
        return "source_tls_failed"
    if _TIMED_OUT.search(text):
        return "source_timeout"
    return "source_unreachable"


# --- secrets --------------------------------------------------------------------------
_SECRET_KEYS = ("password",)
MASK = "********"


def secrets_of(conninfo: str) -> list:
    """Passwords in a conninfo string or URI, longest first, to keep out of every message."""
    secrets = []
    if HAS_PSYCOPG2:
        try:
            parsed = psycopg2.extensions.parse_dsn(conninfo)
            secrets.extend(v for k, v in parsed.items() if k in _SECRET_KEYS and v)
        except psycopg2.Error:
            pass
    secrets.extend(m.group(1) for m in re.finditer(r"password\s*=\s*'?([^'\s]+)", conninfo))
    secrets.extend(m.group(1) for m in re.finditer(r"://[^:/@]*:([^@]+)@", conninfo))
    return sorted(set(s for s in secrets if s), key=len, reverse=True)


def scrubbed(text, *conninfos: str, secrets=()) -> str:
    """`text` (or an exception's message) without the passwords of `conninfos` and
    without `secrets`: the one scrubbing every message that could hold one goes through."""
    text = str(getattr(text, "pgerror", None) or text).strip()
    found = set(s for s in secrets if s)
    for conninfo in conninfos:
        found.update(secrets_of(conninfo or ""))
    for secret in sorted(found, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


# --- the factory ----------------------------------------------------------------------
# The server's statement_timeout ends a slow request cleanly; this side waits that much
# longer before it cuts the connection of a server that does not answer at all.
WATCHDOG_GRACE = 5


class ServerConnector:
    """Opens and guards every session to one server (`peer` names it in messages).

    request_timeout (seconds, 0: none) is each session's statement_timeout, and the
    watchdog cuts a request after it plus WATCHDOG_GRACE -- or when `time_limit` (the
    run's) runs out. `timeout_option` names the setting that sets it, for the message;
    read_only sessions may not write; max_connect_seconds caps connect_timeout."""

    def __init__(self, conninfo: str, connect_timeout: int = DEFAULT_CONNECT_TIMEOUT,
                 request_timeout: int = 0, time_limit: Optional[TimeLimit] = None,
                 peer: str = "the source", timeout_option: str = "source_timeout",
                 read_only: bool = False, max_connect_seconds: Optional[float] = None):
        if not HAS_PSYCOPG2:
            raise SourceError("the psycopg2 Python package is needed on the target host to "
                              "reach %s over libpq." % peer, code="missing_psycopg2")
        self.conninfo = conninfo
        self.connect_timeout = connect_timeout
        self.request_timeout = request_timeout or 0
        self.time_limit = time_limit or TimeLimit(None)
        self.peer = peer
        self.timeout_option = timeout_option
        self.read_only = read_only
        self.max_connect_seconds = max_connect_seconds     # caps even the string's own
        self.secrets = secrets_of(conninfo)
        self.watchdog = Watchdog()
        try:
            self.given = psycopg2.extensions.parse_dsn(conninfo)
        except psycopg2.Error:
            self.given = {}         # connecting says what is wrong with it
        check_tls_settings(self.given, peer)

    def scrub(self, text) -> str:
        return scrubbed(text, secrets=self.secrets)

    def connect(self, dbname: Optional[str] = None):
        """A new autocommit connection (psycopg2), its session's timeouts set."""
        self.time_limit.check("connect to %s" % self.peer)
        params = added_settings(self.given, self.connect_timeout,
                                bounded(self.time_limit.remaining(), self.max_connect_seconds))
        if dbname is not None:
            params["dbname"] = dbname
        try:
            conn = psycopg2.connect(self.conninfo, **params)
        except psycopg2.Error as exc:
            raise self._connect_failed(exc, params.get("connect_timeout",
                                                       self.given.get("connect_timeout"))) \
                from None
        conn.autocommit = True
        try:
            self.call(conn, "configure the session", lambda: self._configure(conn))
        except psycopg2.Error as exc:
            conn.close()
            raise SourceError("could not configure the session on %s: %s"
                              % (self.peer, self.scrub(exc)), code="source_query") from None
        except BaseException:
            conn.close()
            raise
        return conn

    def session(self):
        """A `Session` (a connection whose cursors guard every request)."""
        return Session(self, self.connect())

    def _configure(self, conn) -> None:
        settings = [("statement_timeout", "%ds" % self.request_timeout), ("lock_timeout", "0"),
                    ("idle_in_transaction_session_timeout", "0")]
        if conn.server_version >= 170000:
            settings.append(("transaction_timeout", "0"))
        if self.read_only:
            settings.append(("default_transaction_read_only", "on"))
        with conn.cursor() as cur:
            cur.execute("".join("SELECT pg_catalog.set_config('%s', '%s', false); " % setting
                                for setting in settings) +
                        "SELECT pg_catalog.set_config('search_path', '', false)")

    def _connect_failed(self, exc, connect_timeout):
        text = self.scrub(exc)
        code = connect_failure_code(text)
        if code == "source_timeout" and self.time_limit.expired():
            return self.time_limit.error("connect to %s" % self.peer)
        if code == "source_timeout":
            return SourceError("%s did not complete the connection within %s s "
                               "(connect_timeout): %s" % (self.peer, connect_timeout,
                                                          text), code=code)
        if code.startswith("source_tls"):
            return SourceError("cannot connect to %s over TLS: %s" % (self.peer, text),
                               code=code)
        return SourceError("cannot connect to %s: %s" % (self.peer, text), code=code)

    def call(self, conn, what: str, work):
        """work() (requests on `conn`), cut off when the server does not answer within
        request_timeout plus WATCHDOG_GRACE or the run's time runs out: then a timeout
        error; any other psycopg2 error goes to the caller, who knows what it means."""
        self.time_limit.check(what)
        left = self.time_limit.remaining()
        seconds = bounded(self.request_timeout and self.request_timeout + WATCHDOG_GRACE,
                          None if left is None else max(left, 0.01))
        with self.watchdog.guard(conn.fileno(), seconds) as ticket:
            try:
                answer = work()
            except psycopg2.Error as exc:
                if ticket.fired or self._statement_timed_out(exc):
                    raise self._timed_out(what, exc) from None
                raise
        if ticket.fired:
            raise self._timed_out(what, None)
        return answer

    def _statement_timed_out(self, exc) -> bool:
        return bool(self.request_timeout) and \
            isinstance(exc, psycopg2.extensions.QueryCanceledError) and \
            "statement timeout" in str(exc)

    def _timed_out(self, what, exc):
        if self.time_limit.expired():
            return self.time_limit.error(what)
        return SourceError("%s did not answer within %d s (%s) while trying to %s%s"
                           % (self.peer, self.request_timeout, self.timeout_option,
                              what, (": " + self.scrub(exc)) if exc is not None else "."),
                           code="source_timeout")


class Session:
    """One connection of a ServerConnector, closed at the end of a with block."""

    def __init__(self, connector: ServerConnector, conn):
        self.connector = connector
        self.conn = conn

    def cursor(self, what: str):
        """A cursor whose every execute() is guarded (`what` names it in a timeout)."""
        return GuardedCursor(self, self.conn.cursor(), what)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


class GuardedCursor:
    """A psycopg2 cursor whose requests the connector's watchdog guards (the rows
    fetched afterwards are already on this side)."""

    def __init__(self, session: Session, cursor, what: str):
        self._session = session
        self._cursor = cursor
        self.what = what

    def execute(self, sql, params=None):
        self._session.connector.call(self._session.conn, self.what,
                                     lambda: self._cursor.execute(sql, params))

    def fetchone(self):
        return self._cursor.fetchone()

    def fetchall(self):
        return self._cursor.fetchall()

    def close(self):
        self._cursor.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
