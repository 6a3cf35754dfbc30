"""The rewind's WAL reservation, decided from its options and journal (no server)."""

import pytest

from ansible_collections.pgops.rewind.plugins.module_utils.errors import RefusedError
from ansible_collections.pgops.rewind.plugins.module_utils.options import RewindOptions
from ansible_collections.pgops.rewind.plugins.module_utils.standby.slots import SlotState
from ansible_collections.pgops.rewind.plugins.module_utils.standby.config import standby_files
from ansible_collections.pgops.rewind.plugins.module_utils.standby.walreserve import (
    default_slot_name, wal_reservation)

SOURCE = "host=db2 user=rewind"


def test_default_name_is_a_valid_slot_name_for_any_host():
    assert default_slot_name("DB-1.example.com") == "pgops_rewind_db_1_example_com"
    assert len(default_slot_name("h" * 100)) == 63


def test_keep_follows_write_recovery_conf_unless_given():
    kept = wal_reservation(RewindOptions("/d", source_server=SOURCE, write_recovery_conf=True))
    assert kept.keep and kept.name.startswith("pgops_rewind_") and not kept.owned
    assert not wal_reservation(RewindOptions("/d", source_server=SOURCE)).keep
    assert not wal_reservation(RewindOptions("/d", source_server=SOURCE, write_recovery_conf=True,
                                             keep_slot=False)).keep


def test_no_reservation_for_a_local_source_or_when_opted_out():
    assert wal_reservation(RewindOptions("/d", source_pgdata="/s")) is None
    assert wal_reservation(RewindOptions("/d", source_server=SOURCE, reserve_wal=False)) is None


def test_the_journal_slot_wins_over_the_options():
    options = RewindOptions("/d", source_server=SOURCE, slot_name="other", reserve_wal=False)
    resumed = wal_reservation(options, {"name": "db1", "owned": True})
    assert resumed.name == "db1" and resumed.owned
    assert resumed.journal_entry() == {"name": "db1", "owned": True}


def test_bad_slot_names_are_refused():
    with pytest.raises(RefusedError) as caught:
        wal_reservation(RewindOptions("/d", source_server=SOURCE, slot_name="Bad-Name"))
    assert caught.value.code == "bad_parameters"


def test_a_slot_reserves_wal_only_with_a_restart_lsn_that_is_not_lost():
    assert SlotState("s", "physical", False, "0/3000000", None).reserves_wal
    assert SlotState("s", "physical", False, "0/3000000", "reserved").reserves_wal
    assert not SlotState("s", "physical", False, None, None).reserves_wal
    assert not SlotState("s", "physical", False, "0/3000000", "lost").reserves_wal


def test_primary_slot_name_is_written_quoted(tmp_path):
    changes = standby_files(str(tmp_path), False, "host=db2", {"primary_slot_name": "db1"})
    assert "primary_slot_name = 'db1'" in changes["postgresql.auto.conf"]
    old = standby_files(str(tmp_path), True, "host=db2", {"primary_slot_name": "db1"})
    assert "primary_slot_name = 'db1'" in old["recovery.conf"]
