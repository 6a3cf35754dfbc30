"""One quoting for both languages a standby configuration is written in: libpq
connection strings (checked against libpq itself, through psycopg2) and configuration
file values (checked against the rules of PostgreSQL's configuration lexer; the
integration tests start real servers on them)."""

import re

import psycopg2.extensions
import pytest

from ansible_collections.pgops.rewind.plugins.module_utils.standby.quoting import (
    conninfo_string, parse_conninfo, quote_conninfo_value, quote_setting)
from ansible_collections.pgops.rewind.plugins.module_utils.standby.config import (
    derive_primary_conninfo, edit_settings)

HOSTILE = ["it's", "back\\slash\\", "two words", " lead and trail ", "a=b=", "pässwörd ✓",
           "", "pa'ss\\w0rd x", "\\'", "''", "tab\there", "line\u2028sep", "x"]

# A quoted string as guc-file.l's lexer accepts it, decoded as GUC_scanstr does.
_GUC_STRING = re.compile(r"'((?:[^'\\\n]|\\.|'')*)'\Z", re.S)
_GUC_ESCAPES = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


def _guc_read(quoted):
    match = _GUC_STRING.match(quoted)
    assert match, "the configuration lexer would refuse %r" % quoted
    return re.sub(r"\\(.)|''", lambda m: "'" if m.group(0) == "''"
                  else _GUC_ESCAPES.get(m.group(1), m.group(1)), match.group(1), flags=re.S)


@pytest.mark.parametrize("value", HOSTILE)
def test_conninfo_values_read_back_by_libpq(value):
    params = {"host": "db2", "password": value, "application_name": value}
    text = conninfo_string(params, skip_empty=False)
    assert psycopg2.extensions.parse_dsn(text) == params
    assert parse_conninfo(text) == params


@pytest.mark.parametrize("value", HOSTILE + ["new\nline", "cr\r"])
def test_setting_values_read_back_by_the_configuration_lexer(value):
    assert _guc_read(quote_setting(value)) == value
    conninfo = conninfo_string({"host": "db2", "password": value}, skip_empty=False)
    assert psycopg2.extensions.parse_dsn(_guc_read(quote_setting(conninfo)))["password"] == value


def test_the_reported_password():
    """The issue's case: a libpq-escaped quote inside a configuration value."""
    conninfo = conninfo_string({"user": "r", "password": "pa'ss\\w0rd x"})
    assert conninfo == "user=r password='pa\\'ss\\\\w0rd x'"
    assert quote_setting(conninfo) == "'user=r password=''pa\\\\''ss\\\\\\\\w0rd x'''"


def test_bare_values_stay_bare_and_bad_input_is_refused():
    assert conninfo_string({"host": "db2", "port": 5432, "password": "", "sslmode": None}) \
        == "host=db2 port=5432"
    assert quote_conninfo_value("") == "''"
    with pytest.raises(ValueError):
        conninfo_string({"bad key": 1})
    with pytest.raises(ValueError):
        quote_setting("nul\0")
    with pytest.raises(ValueError):
        parse_conninfo("password='unterminated")


@pytest.mark.parametrize("value", HOSTILE)
def test_derived_primary_conninfo_keeps_hostile_values(value, monkeypatch):
    source = conninfo_string({"host": "db2", "user": "r", "password": value, "dbname": "x"},
                             skip_empty=False)
    derived = derive_primary_conninfo(source)
    assert psycopg2.extensions.parse_dsn(derived) == {"host": "db2", "user": "r",
                                                      "password": value}
    from ansible_collections.pgops.rewind.plugins.module_utils.standby import config as standby
    monkeypatch.setattr(standby, "HAS_PSYCOPG2", False)     # hosts without psycopg2
    assert parse_conninfo(derive_primary_conninfo(source)) == parse_conninfo(derived)


def test_settings_file_lines_split_on_newlines_only():
    text = "a = 'x\u2028y'\nprimary_conninfo = 'old'\n"
    assert edit_settings(text, {"primary_conninfo": "'new'"}) == \
        "a = 'x\u2028y'\nprimary_conninfo = 'new'\n"
    assert edit_settings("", {}) == ""
