"""The rewound node starts even when the new primary runs with higher hot-standby
settings than the old primary's own configuration: the lower ones are raised (and
reported), everything else of the target's configuration is kept."""

import re

import pytest

from support.digest import datadir_digest, differences
from support.rewound import assert_follows_and_matches, rewind
from support.scenarios import failover, switchover

RAISED = {"max_connections": {"from": 40, "to": 60},
          "max_locks_per_transaction": {"from": 64, "to": 80}}


def _raise_on_new_primary(fo):
    """What an operator does after a failover: more connections on the new primary."""
    fo.new_primary.sql("ALTER SYSTEM SET max_connections = 60")
    fo.new_primary.sql("ALTER SYSTEM SET max_locks_per_transaction = 80")
    fo.new_primary.restart()
    fo.new_primary.sql("INSERT INTO history (note) VALUES ('after the restart')")


def _auto_conf_settings(fo):
    text = (fo.old_primary.datadir / "postgresql.auto.conf").read_text()
    return dict(re.findall(r"^(max_\w+) = (\d+)$", text, re.M))


def test_lower_settings_are_raised_and_the_standby_starts(bed, collection, major):
    fo = failover(bed, major)
    _raise_on_new_primary(fo)
    before = datadir_digest(fo.old_primary.datadir)
    dry = rewind(fo, check=True, bindir=str(fo.old_primary.bindir))
    assert not dry["failed"], dry.get("msg")
    assert dry["settings_raised"] == RAISED
    assert differences(before, datadir_digest(fo.old_primary.datadir)) == []

    result = rewind(fo, bindir=str(fo.old_primary.bindir))
    assert not result["failed"], result.get("msg")
    assert result["settings_raised"] == RAISED
    assert "postgresql.auto.conf" in result["standby_files_written"]
    assert _auto_conf_settings(fo) == {"max_connections": "60",
                                       "max_locks_per_transaction": "80"}
    assert_follows_and_matches(fo)
    assert fo.old_primary.scalar("SHOW max_connections") == "60"
    fo.old_primary.stop()
    again = rewind(fo, bindir=str(fo.old_primary.bindir))
    assert again["changed"] is False and again["settings_raised"] == {}


@pytest.mark.parametrize("major, write_recovery_conf", [(12, True), (17, True), (15, False)])
def test_no_rewind_needed_raises_from_the_new_primarys_control_data(
        bed, collection, major, write_recovery_conf):
    """The old primary stopped before the fork: it replays the new primary's WAL,
    parameter changes included, from its own pg_control. Without write_recovery_conf
    the raise is written all the same (the operator configures the standby)."""
    fo = switchover(bed, major)
    _raise_on_new_primary(fo)
    result = rewind(fo, bindir=str(fo.old_primary.bindir),
                    write_recovery_conf=write_recovery_conf)
    assert not result["failed"], result.get("msg")
    assert result["rewind_required"] is False
    assert result["settings_raised"] == RAISED
    assert result["changed"] is True
    if not write_recovery_conf:
        assert _auto_conf_settings(fo) == {"max_connections": "60",
                                           "max_locks_per_transaction": "80"}
        fo.old_primary.make_standby_of(fo.new_primary)
    assert_follows_and_matches(fo)


def test_without_the_postgres_binary_the_check_is_skipped_with_a_warning(
        bed, collection, tmp_path):
    fo = failover(bed, 14)
    tmp_path.chmod(0o755)
    result = rewind(fo, bindir=str(tmp_path))
    assert not result["failed"], result.get("msg")
    assert "settings_raised" not in result
    warnings = " ".join(result.get("warnings", [])) + result["_stdout"] + result["_stderr"]
    assert "hot-standby settings not checked" in re.sub(r"\s+", " ", warnings)


def test_unreadable_configuration_is_refused_before_any_change(bed, collection):
    fo = failover(bed, 15)
    with open(fo.old_primary.datadir / "postgresql.conf", "a") as conf:
        conf.write("max_connections = = 3\n")
    before = datadir_digest(fo.old_primary.datadir)
    result = rewind(fo, bindir=str(fo.old_primary.bindir))
    assert result["failed"] and result["error_code"] == "settings_unreadable", result.get("msg")
    assert differences(before, datadir_digest(fo.old_primary.datadir)) == []


@pytest.mark.parametrize("major, path", [(11, "rewind"), (15, "rewind"), (18, "rewind"),
                                         (16, "clone")])
def test_without_write_recovery_conf_the_raise_is_written_for_an_operator_standby(
        bed, collection, major, path):
    """Used as pg_rewind is (no write_recovery_conf), then configured as a standby by the
    operator's own means: the node starts, because the raise is in postgresql.auto.conf."""
    fo = failover(bed, major)
    _raise_on_new_primary(fo)
    clone = {"fallback": "clone", "clone_when": "always"} if path == "clone" else {}
    result = rewind(fo, write_recovery_conf=False, bindir=str(fo.old_primary.bindir), **clone)
    assert not result["failed"], result.get("msg")
    assert result.get("path", "rewind") == path
    assert result["settings_raised"] == RAISED
    assert "standby_files_written" not in result
    assert _auto_conf_settings(fo) == {"max_connections": "60",
                                       "max_locks_per_transaction": "80"}
    assert not (fo.old_primary.datadir / "standby.signal").exists()
    fo.old_primary.make_standby_of(fo.new_primary)      # the operator's own configuration
    assert_follows_and_matches(fo)
    assert fo.old_primary.scalar("SHOW max_connections") == "60"
    assert fo.old_primary.scalar("SHOW max_locks_per_transaction") == "80"
