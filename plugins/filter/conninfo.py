# -*- coding: utf-8 -*-
# Copyright: pgops.rewind developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The conninfo filter: a libpq connection string from a dict, values quoted as libpq wants."""

from __future__ import annotations

import re

from ansible.errors import AnsibleFilterError

from ansible_collections.pgops.rewind.plugins.module_utils.standby import quote_setting


def _quote(value):
    text = str(value)
    if text and not re.search(r"[\s'\\]", text):
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def conninfo(params):
    """key=value pairs for every non-empty entry of `params`, in the given order."""
    if not isinstance(params, dict):
        raise AnsibleFilterError("conninfo expects a dict of libpq parameters, got %s"
                                 % type(params).__name__)
    parts = []
    for key, value in params.items():
        if value is None or value == "":
            continue
        if not re.match(r"^[a-z_]+$", str(key)):
            raise AnsibleFilterError("%r is not a libpq parameter name" % (key,))
        parts.append("%s=%s" % (key, _quote(value)))
    return " ".join(parts)


def postgresql_quote(value):
    """A string as a postgresql.conf value, quoted as the engine quotes every setting."""
    return quote_setting(str(value))


class FilterModule:
    def filters(self):
        return {"conninfo": conninfo, "postgresql_quote": postgresql_quote}
