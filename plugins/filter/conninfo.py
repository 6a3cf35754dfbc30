# -*- coding: utf-8 -*-
# Copyright: pgops.rewind developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The conninfo and postgresql_quote filters: the engine's own quoting (module_utils/standby/quoting.py),
so the role writes exactly what the module would."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.pgops.rewind.plugins.module_utils.standby.quoting import (
    conninfo_string, quote_setting)


def conninfo(params):
    """key=value pairs for every non-empty entry of `params`, in the given order, each
    value quoted as libpq's conninfo parser reads it."""
    if not isinstance(params, dict):
        raise AnsibleFilterError("conninfo expects a dict of libpq parameters, got %s"
                                 % type(params).__name__)
    try:
        return conninfo_string(dict(params))
    except ValueError as exc:
        raise AnsibleFilterError(str(exc)) from None


def postgresql_quote(value):
    """A string as a postgresql.conf value that the server reads back exactly:
    single-quoted, quotes and backslashes doubled."""
    try:
        return quote_setting(value)
    except ValueError as exc:
        raise AnsibleFilterError(str(exc)) from None


class FilterModule:
    def filters(self):
        return {"conninfo": conninfo, "postgresql_quote": postgresql_quote}
