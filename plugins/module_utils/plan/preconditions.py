# -*- coding: utf-8 -*-
# Copyright: pgops.rewind developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What must hold before a rewind may change the target, checked while it is as found.

Each check refuses with what to do next; the only change one makes is the crash
recovery of a target that was not shut down cleanly (ensure_shutdown), which
PostgreSQL itself would do at its next start.
"""

from __future__ import annotations

from typing import Optional

from .assessment import REWIND_IMPOSSIBLE
from ..target.commands import RestoreCommand, crash_recovery, find_postgres, \
    recovery_conf_setting, show_setting
from ..errors import RefusedError
from .facts import check_compatible, target_facts
from ..target.directory import check_not_running, is_pending_rewind, server_running
from ..target.server_status import server_status, written_past_control
from ..target.config_location import locate_config


def stopped_or_dry_run(pgdata, options, result) -> Optional[int]:
    """None when the target's server is stopped. A running one is refused
    (target_running) unless in check mode, where the run answers from that server as
    pg_rewind_info does: its files as they are, a primary's WAL read up to the position
    its server reports (target_server; without it, up to what pg_control records),
    returned (0: none). A real run needs it stopped first (the role stops it)."""
    if not options.check_mode:
        check_not_running(pgdata)
        return None
    if not server_running(pgdata):
        return None
    status = server_status(options.target_server) if options.target_server else {}
    written = written_past_control(status)
    result["target_running"] = True
    result.setdefault("warnings", []).append(
        "the target server is running on %s: a real run needs it stopped first (the role "
        "pgops.rewind.pg_rewind stops it). This dry run read its WAL up to %s; what it "
        "writes until it stops is discarded too." % (
            pgdata, "%s, where its server is now" % status["wal_position"] if written else
            "what its pg_control records (give target_server to read a running primary's "
            "up to where it is now)"))
    return written


def config_file_for(options, control, pgdata, result) -> None:
    """Without config_file and without a postgresql.conf in the data directory, the Debian
    cluster's (postgresql-common) whose data_directory it is: for the postgres runs (crash
    recovery, settings), as the server itself would be started with it."""
    if options.config_file:
        return
    location = locate_config(pgdata, control.major)
    if location["found_by"] == "debian_layout":
        options.config_file = location["config_file"]
        result["config_file"] = location["config_file"]


def cleanly_stopped_target(pgdata, options, result, control, running: bool = False):
    """The target's control file, after crash recovery if it was not stopped cleanly
    (None in check mode, where that recovery cannot be run). A running target (check
    mode only) is taken as the clean stop a real run starts from."""
    result["target_state_before"] = control.state_name
    if control.cleanly_shut_down or is_pending_rewind(pgdata, control) or running:
        return control
    if not options.ensure_shutdown:
        raise RefusedError("the target was not shut down cleanly (state: %s)." % control.state_name,
                           hint="Set ensure_shutdown: true to let the rewind finish crash "
                                "recovery first, or start and cleanly stop the server yourself.",
                           code="target_unclean")
    result["crash_recovery"] = True
    result["changed"] = True
    if options.check_mode:
        result["msg"] = ("the target was not shut down cleanly; a real run first finishes its "
                         "crash recovery, after which the rewind can be planned.")
        return None
    postgres = find_postgres(control.major, options.bindir)
    crash_recovery(postgres, pgdata, options.config_file)
    control = target_facts(pgdata)
    if not control.cleanly_shut_down:
        raise RefusedError("the target is still not cleanly shut down after crash recovery "
                           "(state: %s)." % control.state_name, code="target_unclean")
    return control


def restore_command_for(options, control, pgdata, restore_dir):
    command = options.restore_command
    if not command and options.restore_target_wal:
        if control.fmt.recovery_conf:
            command = recovery_conf_setting(pgdata, "restore_command")
        else:
            postgres = find_postgres(control.major, options.bindir)
            command = show_setting(postgres, pgdata, "restore_command", options.config_file)
        if not command:
            raise RefusedError("restore_target_wal is set but the target has no restore_command.",
                               hint="Configure restore_command on the target or pass "
                                    "restore_command.", code="no_restore_command")
    if not command:
        return None
    return RestoreCommand(command, control.xlog_seg_size, restore_dir)


def validate_source(source, target_control, options):
    """Everything about the source that can refuse the run, checked while the target is
    still as found (a crashed target's pg_control holds its system identifier too). What
    only makes a rewind impossible is left to the clone fallback, when allowed."""
    source_control = source.control_file()
    try:
        check_compatible(target_control, source_control)
    except RefusedError as exc:
        if options.fallback != "clone" or exc.code not in REWIND_IMPOSSIBLE:
            raise
    source.check_access()
    check_source(source, source_control)


def check_source(source, source_control):
    if not source.full_page_writes(source_control):
        raise RefusedError("full_page_writes is off on the source.",
                           hint="Turn full_page_writes on on the new primary (it is on by "
                                "default) and run again.", code="source_no_fpw")
    source.check_consistent(source_control)
