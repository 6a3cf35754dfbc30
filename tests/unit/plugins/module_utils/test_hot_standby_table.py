"""Which hot-standby settings must be raised: the pure decision (the integration tests
run it on real control files and servers)."""

from types import SimpleNamespace

from ansible_collections.pgops.rewind.plugins.module_utils.standby.hot_standby import (
    required_settings, settings_to_raise)


def _control(connections, senders):
    return SimpleNamespace(max_connections=connections, max_worker_processes=8,
                           max_wal_senders=senders, max_prepared_xacts=0,
                           max_locks_per_xact=64)


def test_required_is_the_highest_recorded_and_skips_what_a_major_does_not_record():
    assert required_settings(_control(60, 10), _control(40, 12)) == {
        "max_connections": 60, "max_worker_processes": 8, "max_wal_senders": 12,
        "max_prepared_transactions": 0, "max_locks_per_transaction": 64}
    assert "max_wal_senders" not in required_settings(_control(60, None))    # PostgreSQL 11


def test_only_lower_settings_are_raised():
    effective = {"max_connections": 40, "max_worker_processes": 16, "max_wal_senders": 10,
                 "max_prepared_transactions": 0, "max_locks_per_transaction": 64}
    assert settings_to_raise(effective, required_settings(_control(60, 10))) == {
        "max_connections": {"from": 40, "to": 60}}
    assert settings_to_raise(effective, required_settings(_control(40, 10))) == {}
