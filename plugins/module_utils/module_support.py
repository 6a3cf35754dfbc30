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
from .plan.assessment import CLONE_WHEN, DEFAULT_CLONE_WHEN, DEFAULT_FALLBACK, FALLBACKS
from .source.connection import DEFAULT_CONNECT_TIMEOUT, DEFAULT_SOURCE_TIMEOUT
from .source.connection import secrets_of

# Error details returned next to msg/error_code/hint (none of them may hold a secret).
REPORTED_DETAILS = ("rewind_in_progress",)

# The source is a running server or a stopped data directory, never both.
SOURCE_MUTUALLY_EXCLUSIVE = [("source_server", "source_pgdata")]


def connection_argument_spec() -> dict:
    """How every module of the collection reaches the new primary (doc fragment
    pgops.rewind.connection): the options module_defaults may set once for the action
    group pgops.rewind.all, so every module of the group must take all of them.
    Connection options given beside the connection string belong here, in that fragment
    and in source_conninfo(). Defaults are the engine's own (source/connection.py)."""
    return dict(
        source_server=dict(type="str", no_log=True),
        connect_timeout=dict(type="int", default=DEFAULT_CONNECT_TIMEOUT),
        source_timeout=dict(type="int", default=DEFAULT_SOURCE_TIMEOUT),
    )


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
    )
    return spec


def argument_defaults(spec: dict) -> dict:
    """{option: default} of an argument spec: the modules' defaults where no AnsibleModule
    applies them (the CLI)."""
    return {name: option["default"] for name, option in spec.items() if "default" in option}


def source_conninfo(params: dict) -> Optional[str]:
    """The connection string a module connects to the source with: source_server as given
    (where options given beside it would be folded in)."""
    return params.get("source_server")


def check_connection(module) -> None:
    """What a module does with the connection options before anything else: every password
    in the connection string becomes a no_log value, a negative timeout is refused."""
    protect_secrets(module, source_conninfo(module.params))
    refuse_negative(module, "connect_timeout", "source_timeout")


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
