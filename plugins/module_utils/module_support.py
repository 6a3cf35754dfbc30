# -*- coding: utf-8 -*-
# Copyright: pgops.rewind developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the collection's modules share: the options they have in common (argument spec
here, documentation in plugins/doc_fragments/), turning engine errors into clean
failures, and keeping passwords out of every result. Duck-typed on AnsibleModule;
imports no Ansible."""

from __future__ import annotations

import traceback
from typing import Optional

from .errors import RewindError
from .plan.assessment import CLONE_WHEN, DEFAULT_ALLOW_OLDER_SOURCE, DEFAULT_CLONE_WHEN, \
    DEFAULT_FALLBACK, FALLBACKS
from .source.connection import DEFAULT_CONNECT_TIMEOUT, DEFAULT_SOURCE_TIMEOUT
from .source.connection import secrets_of
from .standby.quoting import conninfo_string, parse_conninfo

# Error details returned next to msg/error_code/hint (none of them may hold a secret).
REPORTED_DETAILS = ("rewind_in_progress",)

# The source is a running server or a stopped data directory, never both.
SOURCE_MUTUALLY_EXCLUSIVE = [("source_server", "source_pgdata")]


# community.postgresql's connection options (its doc fragment postgres, and login_db of
# its modules): name, the libpq key it sets (None: handled in server_conninfo), its spec.
# No defaults: what is not given comes from the connection string, then libpq's defaults.
SSL_MODES = ["allow", "disable", "prefer", "require", "verify-ca", "verify-full"]
LOGIN_OPTIONS = (
    ("login_host", "host", dict(type="str", aliases=["host"])),
    ("port", "port", dict(type="int", aliases=["login_port"])),
    ("login_user", "user", dict(type="str", aliases=["login"])),
    ("login_password", "password", dict(type="str", no_log=True)),
    ("login_db", "dbname", dict(type="str", aliases=["db"])),
    ("login_unix_socket", None, dict(type="str", aliases=["unix_socket"])),
    ("ssl_mode", "sslmode", dict(type="str", choices=SSL_MODES)),
    ("ca_cert", "sslrootcert", dict(type="str", aliases=["ssl_rootcert"])),
    ("ssl_cert", "sslcert", dict(type="str")),
    ("ssl_key", "sslkey", dict(type="str", no_log=False)),
    ("connect_params", None, dict(type="dict")),
)
# The target's own server (pg_rewind_info's target_server) takes the same options
# with this prefix, so the two servers never share a name.
TARGET_PREFIX = "target_"
# What a result may say about a connection (never the password).
SHOWN_KEYS = ("host", "port", "user", "dbname")


def login_argument_spec(prefix: str = "") -> dict:
    """community.postgresql's connection options, their names (and aliases) prefixed."""
    spec = {}
    for name, _key, option in LOGIN_OPTIONS:
        option = dict(option)
        if "aliases" in option:
            option["aliases"] = [prefix + alias for alias in option["aliases"]]
        spec[prefix + name] = option
    return spec


def connection_argument_spec() -> dict:
    """How every module of the collection reaches the new primary (doc fragment
    pgops.rewind.connection): the options module_defaults may set once for the action
    group pgops.rewind.all, so every module of the group must take all of them.
    Connection options given beside the connection string belong here, in that fragment
    and in server_conninfo(). Defaults are the engine's own (source/connection.py)."""
    spec = dict(
        source_server=dict(type="str", no_log=True),
        connect_timeout=dict(type="int", default=DEFAULT_CONNECT_TIMEOUT),
        source_timeout=dict(type="int", default=DEFAULT_SOURCE_TIMEOUT),
    )
    spec.update(login_argument_spec())
    return spec


def rejoin_argument_spec() -> dict:
    """The options pg_rewind and pg_rewind_info share (doc fragments pgops.rewind.connection
    and pgops.rewind.rejoin): the source, WAL the target lacks, and what to do when a
    rewind is impossible or dearer than a copy (defaults from plan/assessment.py). Use
    with mutually_exclusive=SOURCE_MUTUALLY_EXCLUSIVE."""
    spec = connection_argument_spec()
    spec.update(
        source_pgdata=dict(type="path"),
        restore_command=dict(type="str", no_log=True),
        fallback=dict(type="str", choices=list(FALLBACKS), default=DEFAULT_FALLBACK),
        clone_when=dict(type="str", choices=list(CLONE_WHEN), default=DEFAULT_CLONE_WHEN),
        allow_older_source=dict(type="bool", default=DEFAULT_ALLOW_OLDER_SOURCE),
    )
    return spec


def argument_defaults(spec: dict) -> dict:
    """{option: default} of an argument spec: the modules' defaults where no AnsibleModule
    applies them (the CLI)."""
    return {name: option["default"] for name, option in spec.items() if "default" in option}


def server_conninfo(conninfo: Optional[str], params: dict, prefix: str = "") -> Optional[str]:
    """The connection string for a server: `conninfo` (key=value pairs or a URI) with the
    community.postgresql options given beside it (named with `prefix`) overriding its
    keys, connect_params last of all, as in community.postgresql. Unchanged when no option
    is given; None when neither is. Raises ValueError for a URI with options beside it."""
    given = {}
    for name, key, _option in LOGIN_OPTIONS:
        value = params.get(prefix + name)
        if key and value is not None:
            given[key] = value
    socket = params.get(prefix + "login_unix_socket")
    if socket and given.get("host", "localhost") == "localhost":
        given["host"] = socket      # community.postgresql: the socket serves a local host
    given.update(params.get(prefix + "connect_params") or {})
    if not given:
        return conninfo
    if conninfo and _is_uri(conninfo):
        raise ValueError("a connection URI cannot be combined with options given beside it; "
                         "write it as key=value pairs")
    merged = parse_conninfo(conninfo) if conninfo else {}
    merged.update({key: value for key, value in given.items() if value is not None})
    return conninfo_string(merged, skip_empty=False)


def _is_uri(conninfo: str) -> bool:
    return conninfo.lstrip().startswith(("postgresql://", "postgres://"))


def connection_shown(conninfo: Optional[str]) -> Optional[dict]:
    """host, port, user and dbname of a connection string, for a result (None where the
    string leaves them to libpq's defaults); the password never."""
    if not conninfo:
        return None
    try:
        parsed = _uri_keys(conninfo) if _is_uri(conninfo) else parse_conninfo(conninfo)
    except ValueError:
        parsed = {}
    shown = {key: parsed.get(key) for key in SHOWN_KEYS}
    if shown["port"] is not None and str(shown["port"]).isdigit():
        shown["port"] = int(shown["port"])
    return shown


def _uri_keys(conninfo: str) -> dict:
    from urllib.parse import unquote, urlsplit
    parts = urlsplit(conninfo.strip())
    netloc = parts.netloc.rsplit("@", 1)[-1]
    user = parts.netloc.rsplit("@", 1)[0].split(":", 1)[0] if "@" in parts.netloc else None
    host, _sep, port = netloc.rpartition(":") if not netloc.endswith("]") else (netloc, "", "")
    if not _sep:
        host, port = netloc, None
    return {"host": unquote(host) or None, "port": port or None,
            "user": unquote(user) if user else None,
            "dbname": unquote(parts.path.lstrip("/")) or None}


def source_conninfo(params: dict) -> Optional[str]:
    """The connection string a module connects to the source with: source_server with
    the options given beside it folded in (check_connection refused a bad combination)."""
    return server_conninfo(params.get("source_server"), params)


def target_conninfo(params: dict) -> Optional[str]:
    """pg_rewind_info's connection string to the target's own server: target_server with
    the target_-prefixed options folded in."""
    return server_conninfo(params.get("target_server"), params, TARGET_PREFIX)


def check_connection(module, *builders) -> None:
    """What a module does with the connection options before anything else: the strings
    are built (a URI with options beside it is refused), every password in them becomes
    a no_log value, a negative timeout is refused. `builders`: more than the source's."""
    for build in (source_conninfo,) + builders:
        try:
            protect_secrets(module, build(module.params))
        except ValueError as exc:
            module.fail_json(msg="Cannot build the connection string: %s." % exc,
                             error_code="bad_parameters")
    refuse_negative(module, "connect_timeout", "source_timeout")


def require_source(module, pgdata_allowed: bool = False) -> None:
    """A module that needs the source: a connection string or the options beside it (or,
    where allowed, source_pgdata, which takes none of them)."""
    params = module.params
    conninfo = source_conninfo(params)
    given = [name for name in login_argument_spec() if params.get(name) is not None]
    if pgdata_allowed and params.get("source_pgdata"):
        if given:
            module.fail_json(msg="source_pgdata takes no connection options (%s given)."
                             % ", ".join(given), error_code="bad_parameters")
        return
    if not conninfo:
        module.fail_json(msg="Name the source: source_server or the options login_host, port, "
                             "login_user, ...%s." % (" (or source_pgdata)" if pgdata_allowed else ""),
                         error_code="bad_parameters")


def engine_params(params: dict) -> dict:
    """The module's parameters without the connection options folded into the strings."""
    folded = set(login_argument_spec()) | set(login_argument_spec(TARGET_PREFIX))
    return {name: value for name, value in params.items() if name not in folded}


def refuse_negative(module, *names) -> None:
    for name in names:
        if module.params[name] < 0:
            module.fail_json(msg="%s must not be negative (0: no limit)." % name,
                             error_code="bad_parameters")


def protect_secrets(module, *conninfos) -> None:
    """Register every password inside connection strings as a no_log value, so Ansible
    masks it wherever it might appear (the whole string is no_log already)."""
    for conninfo in conninfos:
        if conninfo:
            module.no_log_values.update(secrets_of(conninfo))


def run_engine(module, work):
    """Run `work()`; an engine error becomes fail_json with its code and hint."""
    try:
        return work()
    except RewindError as exc:
        module.fail_json(msg=str(exc), error_code=exc.code, hint=exc.hint,
                         **{k: v for k, v in exc.details.items() if k in REPORTED_DETAILS})
    except Exception as exc:  # a bug in the engine: say so plainly
        module.fail_json(msg="pgops.rewind internal error: %s: %s. Please report this as a bug; "
                             "if the target was being changed, running the same task again "
                             "completes the rewind." % (type(exc).__name__, exc),
                         error_code="internal_error", exception=traceback.format_exc())
