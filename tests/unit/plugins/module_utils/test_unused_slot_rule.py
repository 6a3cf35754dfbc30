"""The rule for a slot of ours that nothing streams through (standby/unused_slots.py),
and the raised settings written alone (standby/config.py)."""

import os

import pytest

from ansible_collections.pgops.rewind.plugins.module_utils.standby.config import \
    raised_settings_file
from ansible_collections.pgops.rewind.plugins.module_utils.standby.unused_slots import (
    OurSlot, _warning, streams_without)

NODE = "pgops_rewind_db1"


def _server(streaming=True, slot=None, in_recovery=True):
    return {"running": True, "in_recovery": in_recovery,
            "wal_receiver": {"status": "streaming" if streaming else "waiting",
                             "streaming": streaming, "slot_name": slot}}


@pytest.mark.parametrize("slot, server, unused", [
    (OurSlot(NODE, False, "0/3000028", 10), _server(), True),              # no slot
    (OurSlot(NODE, False, "0/3000028", 10), _server(slot="other"), True),  # another one
    (OurSlot(NODE, True, "0/3000028", 10), _server(slot=NODE), False),     # streams through it
    (OurSlot(NODE, False, "0/3000028", 10), _server(streaming=False), False),  # not yet
    (OurSlot(NODE, False, "0/3000028", 10), _server(in_recovery=False), False),  # a primary
    (OurSlot(NODE, False, "0/3000028", 10), {"running": False, "error": "x"}, False),
    (OurSlot(NODE, False, "0/3000028", 10), None, False),                   # state unknown
    (OurSlot("pgops_rewind_db3", False, "0/3000028", 10), _server(), False),  # another node's
])
def test_only_the_nodes_inactive_slot_while_it_streams_without_it(slot, server, unused):
    assert streams_without(slot, NODE, server) is unused


def test_the_warning_names_the_slot_and_the_wal_it_holds():
    text = _warning(OurSlot(NODE, False, "0/3000028", 48 << 20), unused=False)
    assert NODE in text and "48 MB (50331648 bytes)" in text
    assert "pg_drop_replication_slot('%s')" % NODE in text


def test_raised_settings_alone_go_to_postgresql_auto_conf(tmp_path):
    (tmp_path / "postgresql.auto.conf").write_text("work_mem = '7MB'\nmax_connections = 40\n")
    changes = raised_settings_file(str(tmp_path), {"max_connections": 60,
                                                   "max_locks_per_transaction": 80})
    assert changes == {"postgresql.auto.conf": "work_mem = '7MB'\nmax_connections = 60\n"
                                               "max_locks_per_transaction = 80\n"}
    assert raised_settings_file(str(tmp_path), {}) == {}
    assert not os.path.exists(tmp_path / "standby.signal")
