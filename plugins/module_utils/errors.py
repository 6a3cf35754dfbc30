# -*- coding: utf-8 -*-
# Copyright: pgops.rewind developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Errors the engine raises on purpose.

Every one carries a stable `code` (for tests, the troubleshooting table and
automation), a message that says what is wrong, and a `hint` that tells the
operator what to do next. Anything else escaping the engine is a bug.
"""

from __future__ import annotations


# Every error code the engine raises: (what it means, what to do). The default hint of an
# error comes from here; docs/troubleshooting.md is generated from it.
CATALOG = {
    # the data directories
    "not_a_data_directory": ("The path has no global/pg_control.",
                             "Point target_pgdata (or source_pgdata) at a PostgreSQL data directory."),
    "control_unreadable": ("global/pg_control cannot be read.",
                           "Check the file's permissions; run as the data directory's owner."),
    "control_size": ("global/pg_control is not 8192 bytes long.",
                     "The control file is damaged: restore the node from a backup."),
    "control_crc": ("global/pg_control fails its CRC check.",
                    "The control file is damaged: do not rewind; restore from a backup or rebuild."),
    "control_segsize": ("pg_control names an impossible WAL segment size.",
                        "The control file is damaged: restore the node from a backup."),
    "unsupported_block_size": ("The cluster was built with a block size other than 8 kB.",
                               "Use PostgreSQL's own pg_rewind for such builds."),
    "unsupported_version": ("The pg_control/catalog version is not PostgreSQL 11-18.",
                            "Check the major version; this collection supports 11 to 18."),
    # timelines
    "history_missing": ("A timeline history file (NNNNNNNN.history) is missing.",
                        "Copy it from the new primary's pg_wal or the WAL archive into pg_wal."),
    "history_syntax": ("A timeline history file cannot be parsed.",
                       "Replace it with an intact copy from the new primary or the WAL archive."),
    "history_invalid": ("A timeline history file is inconsistent.",
                        "Replace it with an intact copy from the new primary or the WAL archive."),
    "no_common_ancestor": ("The source's and the target's timelines share no history.",
                           "The nodes are not related: rebuild the target from a base backup."),
    # twin timelines (one timeline number created by two promotions)
    "history_not_comparable": ("Source and target are on the same timeline number, but one "
                               "side's history file for it is missing, so whether they share "
                               "that timeline cannot be decided.",
                               "Copy the named NNNNNNNN.history file from the WAL archive (or "
                               "from the node that created that timeline) into pg_wal."),
    "same_timeline_diverged": ("Source and target wrote different WAL on timeline 1, with no "
                               "earlier point both are known to share.",
                               "Check the source is this node's new primary; otherwise rebuild "
                               "the target from a base backup."),
    # WAL
    "wal_missing": ("A WAL segment the rewind must read is not in the target's pg_wal.",
                    "Copy it from the WAL archive into pg_wal, or set restore_command "
                    "(or restore_target_wal: true)."),
    "wal_corrupt": ("The target's WAL is damaged where the rewind must read it.",
                    "Restore the named segment from the WAL archive (restore_command), or "
                    "rebuild the node from a base backup."),
    "wal_scan_process_died": ("A process of the parallel WAL scan ended without its result "
                              "(killed: the kernel's OOM killer, an operator, a service "
                              "manager stopping the job).",
                              "Nothing was changed on the target. Find what killed it in the "
                              "node's kernel log (journalctl -k), then run the same task again."),
    "wal_segment_size": ("A WAL segment file has the wrong size (truncated or foreign).",
                         "Replace it with an intact copy from the WAL archive."),
    "wal_end_mismatch": ("The target's WAL does not end where its control file says.",
                         "The WAL or pg_control is inconsistent: rebuild from a base backup."),
    "wal_unknown_special_record": ("A WAL record changes files in a way a rewind cannot track "
                                   "(e.g. an extension's custom resource manager).",
                                   "A rewind is not safe here: rebuild the node from a base backup."),
    "no_common_checkpoint": ("No checkpoint record was found before the fork in the target's WAL.",
                             "The target's WAL is incomplete: rebuild from a base backup."),
    "bad_lsn": ("A WAL location is malformed.", "Give it as X/X in hexadecimal."),
    # the source
    "source_unreachable": ("The source server cannot be reached or refuses the login.",
                           "Check source_server (host, port, user, password) and the new primary's "
                           "pg_hba.conf."),
    "source_permission": ("The source role may not call the file-access functions.",
                          "GRANT EXECUTE on pg_ls_dir, pg_stat_file and pg_read_binary_file "
                          "(see the docs) or use a superuser."),
    "source_query": ("A query on the source failed.",
                     "Check the source server's log; run again once it is healthy."),
    "source_protocol": ("The source answered a file read inconsistently.",
                        "Run again; if it persists, check the source server."),
    "source_not_pgdata": ("The source is not a PostgreSQL data directory.",
                          "Point source_pgdata at the new primary's data directory."),
    "source_unreadable": ("A file of the local source cannot be read.",
                          "Run as a user who can read the source data directory."),
    "source_unclean": ("The local source data directory was not shut down cleanly.",
                       "Stop the source server cleanly, or use source_server."),
    "source_no_fpw": ("full_page_writes is off on the source.",
                      "Turn full_page_writes on (the default) on the new primary and run again."),
    "source_changed": ("The source changed in a way that makes the copy unusable.",
                       "Keep the source stable while the rewind runs, then run the same task "
                       "again: it completes the interrupted rewind."),
    "source_history_changed": ("The source's timeline history no longer contains the fork an "
                               "interrupted rewind started from.",
                               "The target cannot be completed against this source: rebuild it "
                               "from a base backup of the new primary."),
    "source_timeline_changed": ("The source moved to a new timeline while the rewind ran.",
                                "Run the same task again: it completes against the new timeline."),
    "missing_psycopg2": ("psycopg2 is not installed on the target host.",
                         "Install python3-psycopg2 (or psycopg2-binary), or use source_pgdata."),
    "unsafe_path": ("The source listed a path outside the data directory.",
                    "The source is not a sound data directory: check it before rewinding."),
    # TLS to the source, and bounded time (issue 12 item 8, issue 13 item 5)
    "source_tls_failed": ("The TLS connection to the source failed: its certificate does not "
                          "verify against sslrootcert, does not name the host connected to, or "
                          "the source rejected the client certificate.",
                          "Check sslrootcert (the CA that signed the new primary's certificate), "
                          "that the host in the connection string is a name or address in the "
                          "certificate, and sslcert/sslkey; nothing was changed."),
    "source_tls_files": ("A certificate or key file named in the source connection string "
                         "cannot be used (missing, unreadable, or a key readable by others).",
                         "Give absolute paths readable by the OS user running the rewind; "
                         "the client key must be mode 0600 and owned by that user."),
    "source_tls_required": ("The source accepts only TLS connections (pg_hba.conf hostssl) and "
                            "the connection string does not use TLS.",
                            "Set sslmode=verify-full and sslrootcert in the source connection "
                            "string (role: pg_rewind_source_sslrootcert)."),
    "source_tls_weak": ("The source connection names sslrootcert with an sslmode that does not "
                        "verify the certificate (libpq may fall back to no TLS at all).",
                        "Set sslmode=verify-full (or verify-ca) in the source connection string."),
    "source_timeout": ("The source did not answer in time (connect_timeout, or source_timeout "
                       "for one request): it is hung, overloaded or unreachable.",
                       "Check the new primary and the network to it, then run the same task "
                       "again (it completes an interrupted rewind); raise source_timeout only "
                       "for a source that is merely slow."),
    "timeout": ("The run did not finish within its overall timeout; the message names the phase.",
                "Run the same task again: before the first change the target is untouched, "
                "after it the rerun completes the rewind from its journal. Raise timeout if "
                "the rewind needs longer."),
    # preconditions
    "different_system": ("Source and target are different database systems.",
                         "Point the source at the new primary of this very cluster."),
    "different_version": ("Source and target run different PostgreSQL majors.",
                          "Both sides must run the same major version."),
    "different_layout": ("Source and target differ in block or segment sizes.",
                         "They cannot be the same cluster: check the source."),
    "no_hint_protection": ("The target has neither data checksums nor wal_log_hints.",
                           "Rebuild this node from a base backup; enable wal_log_hints (or "
                           "checksums) on every node so the next failover can be rewound."),
    "target_running": ("The target server is running.",
                       "Stop it first; the role pgops.rewind.pg_rewind does that for you. A dry "
                       "run (check mode) answers while it runs (give target_server)."),
    "target_unclean": ("The target was not shut down cleanly.",
                       "Set ensure_shutdown: true (the default), or start and stop it cleanly."),
    "replay_wal_missing": ("A WAL segment the rewound node must replay (from the last common "
                           "checkpoint's redo to the source's end) is on neither side any more "
                           "and cannot be restored.",
                           "Give restore_command fetching from the WAL archive, or set "
                           "fallback: clone; keep WAL on the new primary (wal_keep_size, an "
                           "archive) until old primaries are rejoined."),
    "wrong_direction": ("The target's timeline history descends from the source's current "
                        "timeline: the target is the newer primary.",
                        "Check which node is which (source_server / target_pgdata, the "
                        "inventory's old_primary and new_primary groups); set "
                        "allow_older_source: true only to return to the old primary on "
                        "purpose."),
    "target_ahead": ("On the same timeline, the target's WAL goes further than the source's.",
                     "Check the source is the promoted new primary; otherwise rebuild the target."),
    "target_not_writable": ("Files the rewind must change are not writable by the owner.",
                            "Fix their ownership or mode, or list them in keep_files."),
    "type_mismatch": ("A path is a file on one side and a directory or link on the other.",
                      "Make the target's layout match the source's and run again."),
    "rewind_interrupted": ("The target holds an unfinished rewind.",
                           "Run the same rewind task again to complete it."),
    # relaunching an interrupted rewind
    "interrupted_rewind_mismatch": ("The journal of an unfinished rewind describes another "
                                    "PostgreSQL major than the data directory's PG_VERSION.",
                                    "Something else changed the data directory: rebuild the "
                                    "node from a base backup of the new primary."),
    "run_as_root": ("The rewind was started as root.",
                    "Run as the data directory's owner (become_user: postgres)."),
    "not_owner": ("The rewind was started by a user who does not own the data directory.",
                  "Run as the data directory's owner (become_user: postgres)."),
    "bad_parameters": ("The module's parameters contradict each other.",
                       "Fix the parameters as the message says."),
    # external programs
    "no_postgres_binary": ("The target's own postgres binary was not found.",
                           "Give bindir: the directory with the target major's binaries."),
    "crash_recovery_failed": ("Single-user crash recovery of the target failed.",
                              "Start the target once by hand to finish recovery, stop it "
                              "cleanly, and run again."),
    "show_setting_failed": ("Reading a setting with postgres -C failed.",
                            "Check config_file and bindir; or give restore_command directly."),
    "no_restore_command": ("restore_target_wal is set but the target has no restore_command.",
                           "Configure restore_command on the target, or pass restore_command."),
    "restore_command_invalid": ("restore_command uses a placeholder a rewind cannot fill.",
                                "Use only %f, %p and %%."),
    "restore_command_failed": ("restore_command crashed or restored a file of the wrong size.",
                               "Run the command by hand for the named segment and fix it."),
    # the clone fallback
    "clone_needs_server": ("The clone fallback copies from a running server, not a data directory.",
                           "Give source_server (the new primary) instead of source_pgdata."),
    "clone_no_room": ("There is no room for the clone beside the old data directory.",
                      "Free space on the filesystems named, or set clone_discard_old: true to "
                      "delete the old data directory first (its data is lost)."),
    "clone_parent_not_writable": ("The directory holding the data directory is not writable, "
                                  "so the clone cannot be built beside it.",
                                  "Let the data directory's owner write that directory, or "
                                  "rebuild the node by hand (pg_basebackup)."),
    "clone_in_the_way": ("<pgdata>.pgops-new exists but holds no clone journal.",
                         "Move it away (it is not pgops.rewind's) and run again."),
    "clone_wal_removed": ("The source recycled WAL the clone needs before it was copied.",
                          "Give the rewind role REPLICATION (a temporary slot then reserves "
                          "the WAL) or raise wal_keep_size on the new primary, and run again: "
                          "the clone resumes."),
    "clone_failed": ("The source's base backup answered unexpectedly.",
                     "Run again (the clone resumes); if it persists, rebuild with pg_basebackup."),
    # hot-standby settings (the standby must start)
    "settings_unreadable": ("The target's configuration cannot be read (postgres -C failed) to "
                            "compare its hot-standby settings with the new primary's.",
                            "Fix the configuration (the server would not start with it either), "
                            "or give config_file when it lives outside the data directory (a "
                            "Debian cluster's is found without it; the role also asks the "
                            "running server), and run again."),
    # one run at a time; no server started under a running rewind
    "rewind_in_progress": ("Another pgops.rewind run holds the target (the message names its "
                           "pid, host and start time); this run read and changed nothing.",
                           "Let it finish (or stop that process) and run again. A run that died "
                           "holds no lock; a cancelled AWX job's module may still be running."),
    "target_lock_failed": ("The target data directory could not be locked for the run.",
                           "Check that the directory (or the lock file in the temporary "
                           "directory the message names) can be opened by its owner."),
    # WAL reserved on the source with a replication slot (standby/walreserve.py)
    "source_no_replication": ("The source role may not create replication slots (it lacks "
                              "REPLICATION), which reserving the new primary's WAL needs.",
                              "ALTER ROLE ... REPLICATION (or use a superuser), or set "
                              "reserve_wal: false (role: pg_rewind_reserve_wal: false)."),
    "slot_in_use": ("The replication slot name is taken on the source: by a slot in use, a "
                    "logical slot, or a slot that reserves no WAL.",
                    "Choose another slot_name (role: pg_rewind_primary_slot_name), or drop "
                    "that slot if nothing needs it."),
    "slot_failed": ("Creating or dropping the replication slot on the source failed (e.g. "
                    "max_replication_slots reached).",
                    "Read the message; free a slot or raise max_replication_slots on the new "
                    "primary, or set reserve_wal: false."),
    # writing the target
    "target_write": ("Writing to the target failed mid-way.",
                     "Fix the cause (disk space, permissions) and run the same task again: "
                     "it completes the rewind."),
    "internal_error": ("A bug in pgops.rewind.",
                       "Report it; running the same task again completes an interrupted rewind."),
}


class RewindError(Exception):
    """An error an operator can act on."""

    code = "rewind_error"
    hint = ""

    def __init__(self, message, hint=None, code=None, **details):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if hint is not None:
            self.hint = hint
        elif self.code in CATALOG:
            self.hint = CATALOG[self.code][1]
        self.details = details

    def __str__(self):
        if self.hint:
            return "%s %s" % (self.message, self.hint)
        return self.message

    def as_dict(self):
        return {"code": self.code, "message": self.message, "hint": self.hint}


class ControlFileError(RewindError):
    code = "not_a_data_directory"


class TimelineError(RewindError):
    code = "history_invalid"


class WalError(RewindError):
    """The WAL cannot be read where it must be: corrupt, from another cluster, or cut short."""

    code = "wal_corrupt"


class MissingWalError(WalError):
    """A WAL segment the rewind must read is not there."""

    code = "wal_missing"


class ScanProcessError(RewindError):
    """A WAL scan worker ended without a result: not the WAL's fault, so no clone."""

    code = "wal_scan_process_died"


class SourceError(RewindError):
    code = "source_query"


class RefusedError(RewindError):
    """A precondition does not hold; nothing was changed."""

    code = "bad_parameters"
