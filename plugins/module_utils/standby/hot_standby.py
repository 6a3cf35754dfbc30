# -*- coding: utf-8 -*-
# Copyright: pgops.rewind developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The standby must start: hot-standby settings no lower than the primary's.

A hot standby refuses to start ("recovery aborted because of insufficient parameter
settings") when one of its settings below is lower than the value recorded in the
control data it replays from: the rewound pg_control is the source's copy, and a
target that needed no rewind replays the source's WAL, whose parameter-change records
carry the source's values (which the source's pg_control holds too). The target keeps
its own configuration; only the settings lower than required are raised, where the
standby settings are written.
"""

from __future__ import annotations

from ..target.commands import CommandError, find_postgres, show_settings
from ..errors import RefusedError

# (setting, the ControlFile field recording the primary's value). A field that the
# major's control file lacks (max_wal_senders before 12) is not checked by that major.
HOT_STANDBY_SETTINGS = (
    ("max_connections", "max_connections"),
    ("max_worker_processes", "max_worker_processes"),
    ("max_wal_senders", "max_wal_senders"),
    ("max_prepared_transactions", "max_prepared_xacts"),
    ("max_locks_per_transaction", "max_locks_per_xact"),
)


def required_settings(*controls) -> dict:
    """{setting: lowest value a standby may run with} over the control files it will
    check against."""
    required = {}
    for name, field in HOT_STANDBY_SETTINGS:
        values = [getattr(c, field) for c in controls if getattr(c, field) is not None]
        if values:
            required[name] = max(values)
    return required


def settings_to_raise(effective: dict, required: dict) -> dict:
    """{setting: {"from": effective, "to": required}} for each setting below its
    required value (a pure decision over the two readings)."""
    return {name: {"from": effective[name], "to": value}
            for name, value in required.items() if effective[name] < value}


def effective_settings(postgres: str, pgdata: str, config_file=None) -> tuple:
    """(hot_standby on?, {setting: int}) as the target's own server would read its
    configuration (postgresql.conf, its includes, postgresql.auto.conf)."""
    names = ["hot_standby"] + [name for name, _field in HOT_STANDBY_SETTINGS]
    values = show_settings(postgres, pgdata, names, config_file)
    hot = values.pop("hot_standby") == "on"
    return hot, {name: int(value) for name, value in values.items()}


def raise_settings(options, pgdata: str, controls, result: dict) -> dict:
    """The settings to raise ({setting: value}) for the target to start as a hot standby
    of what `controls` record; reported in result["settings_raised"]. Without the
    target's `postgres` binary the check is skipped, with a warning."""
    major = controls[0].major
    try:
        postgres = find_postgres(major, options.bindir)
    except RefusedError:
        result.pop("settings_raised", None)
        warning = ("hot-standby settings not checked: no PostgreSQL %d postgres binary found; "
                   "give bindir so that settings lower than the new primary's are raised."
                   % major)
        if warning not in result.setdefault("warnings", []):
            result["warnings"].append(warning)
        return {}
    try:
        hot, effective = effective_settings(postgres, pgdata, options.config_file)
    except CommandError as exc:
        raise RefusedError("the target's configuration cannot be read: %s" % exc.message,
                           code="settings_unreadable") from None
    raised = settings_to_raise(effective, required_settings(*controls)) if hot else {}
    result["settings_raised"] = raised
    return {name: change["to"] for name, change in raised.items()}
