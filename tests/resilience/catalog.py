"""The faults and bad inputs the tests inject, how, and the outcome they assert.

docs/faults.md is rendered from this table (`python tests/resilience/catalog.py >
docs/faults.md`); test_fault_table.py checks the two agree and that every test named
here exists, so the document cannot drift from what is actually tested.
"""

from __future__ import annotations

FAULTS = [
    # (fault or bad input, how the tests inject it, outcome asserted, test)
    ("kill -9 during the copy (3 random points per scenario, 4 scenarios on 11/14/15/18)",
     "PGOPS_REWIND_FAULT=kill:N at the N-th change, seeded",
     "`pg_ctl start` fails (pg_control is set aside); the rerun completes; the node streams "
     "and all data equals the new primary", "resilience/test_kill.py::test_killed_at_any_point_then_completed"),
    ("kill -9 in the finish: backup_label, standby configuration, journal update, new "
     "pg_control, journal removal", "PGOPS_REWIND_FAULT=kill@<step>",
     "before the new pg_control: start fails; after it: the node starts only in recovery; "
     "the rerun completes", "resilience/test_kill.py::test_killed_at_any_point_then_completed"),
    ("kill -9 while the journal is being written (before the first change)", "kill:N, N <= 2",
     "the target is unchanged; the rerun discards the stub journal and starts afresh",
     "resilience/test_kill.py::test_killed_at_any_point_then_completed"),
    ("source connection terminated mid-copy", "pg_terminate_backend() while the rewind is "
     "paused (PGOPS_REWIND_FAULT=pause)", "error `source_changed`; start fails; the rerun "
     "completes", "resilience/test_source_faults.py::test_connection_dropped_mid_copy"),
    ("source restarted mid-copy with a higher max_connections", "ALTER SYSTEM and pg_ctl "
     "restart while paused", "error `source_changed`; the rerun completes and raises the "
     "node's max_connections, which then starts as a standby",
     "resilience/test_source_faults.py::test_source_restarted_mid_copy_with_a_higher_setting"),
    ("source promoted again mid-rewind", "the standby serving as source is promoted while "
     "paused", "error `source_timeline_changed`; the rerun completes on the new timeline",
     "resilience/test_source_faults.py::test_source_promoted_again_mid_rewind"),
    # TLS to the source, bounded time (issue 12 item 8, issue 13 item 5)
    ("hung source before the first change (every process SIGSTOPped)", "SIGSTOP before the "
     "run; module timeout 8 s; pg_rewind_info connect_timeout 3 s", "error `timeout` naming "
     "phase facts within the bound / `source_timeout`; unchanged; after SIGCONT the rerun "
     "completes", "resilience/test_hung_source.py::test_hung_source_before_the_first_change"),
    ("source hangs mid-copy", "SIGSTOP while the rewind is paused; source_timeout 3 s, or "
     "timeout 45 s", "error `source_timeout` / `timeout` within the bound; start fails; the "
     "rerun completes", "resilience/test_hung_source.py::test_source_hangs_mid_copy"),
    ("source certificate that does not verify; TLS-only source reached without TLS; CA file "
     "with sslmode prefer; client key readable by others", "a hostssl-only new primary, an "
     "impostor CA, a host name not in the certificate", "refused `source_tls_failed` / "
     "`source_tls_required` / `source_tls_weak` / `source_tls_files`; unchanged; with the "
     "right CA the rewind runs and the standby streams over TLS",
     "rewind/test_tls.py::test_rewind_over_verified_tls_refusing_what_does_not_verify"),
    ("busy new primary keeping little WAL (wal_keep_size 0, max_wal_size 32MB)", "a writer "
     "updates, switches WAL and checkpoints during the rewind and 5 s after it (11/12/15/18)",
     "the slot created before the copy keeps the WAL: the node streams through it and its "
     "data equals the new primary's; without it (reserve_wal: false) the node is refused "
     "its first segment", "rewind/test_wal_reserved.py::test_busy_new_primary_keeps_the_wal_the_node_needs"),
    ("run failing after its slot was created", "connection terminated mid-copy (12/15/18); "
     "a refusal after the plan (`target_not_writable`)", "the slot is dropped; the rerun "
     "creates it again and completes", "rewind/test_wal_reserved.py::test_failed_run_leaves_no_slot_and_the_rerun_completes"),
    ("kill -9 after the slot was created", "PGOPS_REWIND_FAULT=kill:N", "the journal records "
     "the slot; the rerun reuses it (no second slot), the node streams through it",
     "rewind/test_wal_reserved.py::test_killed_run_is_resumed_with_the_same_slot"),
    ("source role without REPLICATION; slot name in use", "a role granted only the file "
     "functions; a standby streaming through a slot of that name", "refused "
     "`source_no_replication` (the role: before the node is stopped) / `slot_in_use`; "
     "unchanged; reserve_wal: false works", "rewind/test_wal_reserved.py::test_source_role_without_replication"),
    ("local source file growing while copied", "a process appends to it",
     "error `source_changed` naming the file",
     "rewind/test_scenarios.py::test_growing_source_file_is_refused"),
    ("source of another system", "a separate cluster", "refused `different_system`; target "
     "byte-for-byte unchanged", "rewind/test_refusals.py::test_different_system"),
    ("target still running", "server started and frozen (SIGSTOP)", "refused "
     "`target_running`; unchanged", "rewind/test_refusals.py::test_target_running"),
    ("target without checksums or wal_log_hints", "initdb without either", "refused "
     "`no_hint_protection`; unchanged",
     "rewind/test_refusals.py::test_no_checksums_nor_wal_log_hints"),
    ("target crashed, ensure_shutdown false", "immediate stop", "refused `target_unclean`; "
     "unchanged", "rewind/test_scenarios.py::test_crashed_target_without_ensure_shutdown_is_refused"),
    ("source unreachable", "a closed port", "refused `source_unreachable`; unchanged",
     "rewind/test_refusals.py::test_source_unreachable"),
    ("wrong password", "scram-sha-256 with a wrong password", "refused `source_unreachable`; "
     "the password appears nowhere; unchanged", "rewind/test_refusals.py::test_wrong_password"),
    ("target WAL missing, no restore_command", "segments moved to an archive",
     "refused `wal_missing` naming the segment; unchanged; with restore_command it completes",
     "rewind/test_scenarios.py::test_restore_command_fetches_missing_target_wal"),
    ("corrupt target WAL", "bytes flipped in a record the scan reads", "refused "
     "`wal_corrupt`; unchanged", "rewind/test_refusals.py::test_corrupt_target_wal"),
    ("source with full_page_writes off", "ALTER SYSTEM + reload", "refused `source_no_fpw`; "
     "unchanged", "rewind/test_refusals.py::test_source_without_full_page_writes"),
    ("target file the owner cannot write", "chown root", "refused `target_not_writable` "
     "before any change; unchanged", "rewind/test_refusals.py::test_unwritable_target_file"),
    ("run as root / as another user", "become: false / user nobody", "refused `run_as_root` "
     "/ `not_owner`; unchanged", "rewind/test_refusals.py::test_run_as_another_user"),
    ("truncated, zero-filled, wrong-magic, foreign-timeline, foreign-system WAL pages; "
     "missing segment; bad record CRC", "damaged copies of real segments",
     "a WalError naming the segment and LSN", "integration/test_bad_wal.py::test_zero_filled_page"),
    ("a WAL record failing one record check (resource manager, forward prev-link, length, "
     "CRC, continuation), within a page, spanning pages or with its header split",
     "damaged copies of real segments, the CRC made right where another check is meant",
     "the scan and the backward search's random access refuse it alike (same reason, same "
     "LSN)", "integration/test_bad_wal.py::"
     "test_a_record_failing_a_check_is_refused_alike_by_the_scan_and_random_access"),
    ("control file with a bad CRC, unknown version, wrong size; no data directory",
     "damaged copies of a real pg_control", "ControlFileError naming the file",
     "integration/test_controlfile.py::test_bad_crc_and_unknown_version_are_clear_errors"),
    ("malformed or missing timeline history", "hand-written history files",
     "TimelineError naming the file", "unit/plugins/module_utils/test_timeline.py::test_malformed_history_is_a_clear_error"),
    ("listing with `..`, absolute paths, symlinks outside, relative tablespace links, "
     "impossible sizes", "hand-written listings (a real server cannot produce them)",
     "refused `unsafe_path`; nothing written",
     "unit/plugins/module_utils/test_hostile_source.py::test_paths_leaving_the_data_directory_are_refused"),
    ("symlink planted inside the target", "base/5 -> a directory outside", "refused "
     "`unsafe_path`; nothing written outside",
     "unit/plugins/module_utils/test_hostile_source.py::test_no_write_through_a_symlink_planted_in_the_target"),
    ("fuzzed pg_control, history files, WAL segments and records", "hypothesis, 150 "
     "mutations of real bytes each", "only the engine's own errors; each read ends in "
     "seconds; random access reads what the scan reads and refuses the record it refuses",
     "integration/test_fuzz.py::test_wal_reader_on_mutated_segments"),
    ("the test password", "every role the tests create uses it", "never in a module "
     "result, warning, error, saved output or server log", "conftest.py::pytest_sessionfinish"),
    # one run at a time; no server under a running rewind; refusals before crash recovery
    ("a second run while one works on the target (also check mode, pg_rewind_info)",
     "the first paused at its WAL scan (PGOPS_REWIND_FAULT=pause@phase wal_scan)",
     "refused `rewind_in_progress` naming the first run's pid, host, start time; unchanged; "
     "the first completes and all data equals", "resilience/test_concurrency.py::"
     "test_second_run_refused_while_the_first_runs"),
    ("two runs started at the same moment", "two processes launched together",
     "one completes, the other is refused `rewind_in_progress`; data equal",
     "resilience/test_concurrency.py::test_runs_started_together"),
    ("the role while a run holds the target", "a run paused at its WAL scan",
     "the preflight fails with `rewind_in_progress`; nothing stopped or changed",
     "resilience/test_concurrency.py::test_role_preflight_stops_while_a_run_holds_the_target"),
    ("kill -9 while WAL scan workers run (they outlive it)",
     "pause@wal scan part in a worker, SIGKILL to the run",
     "the next run is not blocked and completes", "resilience/test_concurrency.py::"
     "test_killed_run_does_not_block_the_next"),
    ("a WAL scan process killed (the OOM killer, an operator), with fallback: clone",
     "pause@wal scan part in a worker, SIGKILL to that worker",
     "refused `wal_scan_process_died` naming SIGKILL (not `wal_corrupt`: no clone); "
     "unchanged; the same run again completes, data equal", "resilience/test_concurrency.py::"
     "test_scan_worker_killed_refuses_without_a_clone"),
    ("server started on the target during the WAL scan", "pg_ctl start while the run is "
     "paused at its WAL scan, then frozen (SIGSTOP)", "refused `target_running` before the "
     "first write; no journal, pg_control in place; unchanged",
     "resilience/test_concurrency.py::test_server_started_during_the_wal_scan"),
    ("crashed target with an absent, foreign or unprivileged source (also check mode)",
     "immediate stop; closed port, another cluster, roles without the file functions",
     "refused before crash recovery; byte-identical", "rewind/test_refusals.py::"
     "test_crashed_target_refusals_come_before_crash_recovery"),
    # restricted hosts, interruption, shared temporary directories (issue 12, items 4-6)
    ("kill -9 after an unsynced run changed everything, then resume", "sync: false, "
     "kill@replace_file backup_label; fsyncs recorded (PGOPS_REWIND_SYNC_RECORD)",
     "every path the killed run changed, and its directory, is fsynced before pg_control is "
     "renamed; the node streams with equal data",
     "resilience/test_durable_resume.py::test_resumed_run_syncs_what_the_killed_run_changed"),
    ("md5 revoked from PUBLIC; sha256 revoked too", "REVOKE EXECUTE ... FROM PUBLIC on the "
     "source, least-privilege role", "the rewind succeeds (with sha256; without it, copying "
     "whole files and a warning); equal data",
     "rewind/test_privileges.py::test_refused_digest_means_copying_not_failing"),
    ("symlink planted at the progress file's path", "root's link to a file of the data "
     "directory's owner", "nothing written through it; progress in the private directory, "
     "0600, with a warning", "rewind/test_host_hygiene.py::test_link_planted_at_the_progress_path"),
    ("restore_command with archive credentials", "an option value set to the test password, "
     "-vvv", "the command appears in no result or output",
     "rewind/test_host_hygiene.py::test_restore_command_is_kept_out_of_results"),
]


def render() -> str:
    lines = ["# Faults and bad inputs",
             "",
             "Generated from `tests/resilience/catalog.py`; every row is asserted by the "
             "named test on real clusters. `PGOPS_REWIND_FAULT` is the engine's "
             "fault-injection hook (`plugins/module_utils/runtime/faults.py`), inert unless set.",
             "",
             "| Fault or bad input | How it is injected | Outcome (asserted) | Test |",
             "| --- | --- | --- | --- |"]
    for fault, how, outcome, test in FAULTS:
        lines.append("| %s | %s | %s | `tests/%s` |" % (fault, how, outcome, test))
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render(), end="")
