# -*- coding: utf-8 -*-
# Copyright: pgops.rewind developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the collection's modules share: turning engine errors into clean failures and
keeping passwords out of every result. Duck-typed on AnsibleModule; imports no Ansible."""

from __future__ import annotations

import traceback

from .errors import RewindError
from .source.libpq import secrets_of

# Error details returned next to msg/error_code/hint (none of them may hold a secret).
REPORTED_DETAILS = ("rewind_in_progress",)


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
