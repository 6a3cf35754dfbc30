# -*- coding: utf-8 -*-
# Copyright: pgops.rewind developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Quoting for the two languages a standby configuration is written in.

A `primary_conninfo` is a libpq connection string inside a configuration-file string,
so a password passes two parsers: PostgreSQL's configuration file lexer
(guc-file.l, GUC_scanstr: inside '...', a backslash escapes the next character and
'' is a quote) and then libpq's conninfo parser (conninfo_parse in fe-connect.c:
inside '...', a backslash escapes the next character). The module, the role's filters
and recovery.conf on 11 all quote through this one file.
"""

from __future__ import annotations

import re

# What may stand unquoted as a libpq value: no whitespace, quote or backslash (which
# end or escape it), and not empty. Anything else is quoted.
_CONNINFO_BARE = re.compile(r"[^\s'\\]+")
_CONNINFO_KEY = re.compile(r"^[a-z_]+$")
_C_SPACE = " \t\n\v\f\r"         # isspace() in the C locale: what libpq splits on
_OPTION_NAME = re.compile(r"([^=%s]+)[%s]*=[%s]*" % ((re.escape(_C_SPACE),) * 3))
# Characters the configuration lexer cannot take raw inside '...' (a newline ends the
# line) written as the escapes GUC_scanstr decodes.
_SETTING_ESCAPES = {"\\": "\\\\", "'": "''", "\n": "\\n", "\r": "\\r"}


def quote_conninfo_value(value) -> str:
    """A value as libpq reads it back: bare when it can be, else in single quotes with
    backslashes and quotes escaped by a backslash."""
    text = str(value)
    if _CONNINFO_BARE.fullmatch(text):
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def conninfo_string(params: dict, skip_empty: bool = True) -> str:
    """key=value pairs, in the given order; None (and, with skip_empty, "") is left out
    so that libpq's default applies."""
    parts = []
    for key, value in params.items():
        if value is None or (skip_empty and value == ""):
            continue
        if not _CONNINFO_KEY.match(str(key)):
            raise ValueError("%r is not a libpq parameter name" % (key,))
        parts.append("%s=%s" % (key, quote_conninfo_value(value)))
    return " ".join(parts)


def parse_conninfo(conninfo: str) -> dict:
    """A key=value connection string as libpq's conninfo_parse reads it (no URIs), for
    hosts without psycopg2."""
    params, pos, text = {}, 0, conninfo
    while True:
        while pos < len(text) and text[pos] in _C_SPACE:
            pos += 1
        if pos >= len(text):
            return params
        match = _OPTION_NAME.match(text, pos)
        if not match:
            raise ValueError("missing \"=\" after a connection option name")
        key, pos = match.group(1), match.end()
        value = []
        quoted = pos < len(text) and text[pos] == "'"
        pos += quoted
        while True:
            if pos >= len(text):
                if quoted:
                    raise ValueError("unterminated quoted string in a connection string")
                break
            char = text[pos]
            if char == "\\":
                value.append(text[pos + 1:pos + 2])
                pos += 2
                continue
            if (quoted and char == "'") or (not quoted and char in _C_SPACE):
                pos += 1
                break
            value.append(char)
            pos += 1
        params[key] = "".join(value)


def quote_setting(value) -> str:
    """A string as a postgresql.conf / postgresql.auto.conf / recovery.conf value that
    the server reads back exactly: single-quoted, quotes doubled, backslashes doubled
    (as ALTER SYSTEM writes them), line breaks as \\n / \\r."""
    text = str(value)
    if "\0" in text:
        raise ValueError("a configuration value cannot hold a NUL character")
    return "'" + "".join(_SETTING_ESCAPES.get(char, char) for char in text) + "'"
