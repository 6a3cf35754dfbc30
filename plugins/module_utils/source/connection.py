# -*- coding: utf-8 -*-
# Copyright: pgops.rewind developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""How the engine connects to the source: the settings it adds when the connection
string does not name them (connect timeout, TCP keepalives), the TLS settings it
refuses as unsafe, and what a failed connection attempt means (an error code that
tells TLS trouble from an unreachable server from a timeout).

Pure functions over the parsed connection string and libpq's message text.
"""

from __future__ import annotations

import re

from ..errors import RefusedError

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


def check_tls_settings(given: dict) -> None:
    """A certificate to verify against, with an sslmode that does not verify, is a
    mistake that costs the protection: libpq's default (prefer) falls back to an
    unencrypted, unverified connection when the certificate does not verify."""
    mode = given.get("sslmode") or "prefer"
    if given.get("sslrootcert") and mode not in _VERIFYING_MODES + ("require",):
        raise RefusedError(
            "the source connection names sslrootcert but sslmode is %s, which does not verify "
            "the server's certificate (and may fall back to an unencrypted connection)." % mode,
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
