"""The conninfo and postgresql_quote filters."""

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.pgops.rewind.plugins.filter.conninfo import conninfo, postgresql_quote


def test_conninfo_quotes_and_skips_empty_values():
    assert conninfo({"host": "db2", "port": 5432, "user": "r", "password": "", "sslmode": None}) \
        == "host=db2 port=5432 user=r"
    assert conninfo({"password": "it's a secret", "application_name": "a\\b"}) == \
        "password='it\\'s a secret' application_name='a\\\\b'"
    with pytest.raises(AnsibleFilterError):
        conninfo("host=db2")
    with pytest.raises(AnsibleFilterError):
        conninfo({"bad key": 1})


def test_postgresql_quote():
    assert postgresql_quote("host=db2 application_name='x'") == "'host=db2 application_name=''x'''"
