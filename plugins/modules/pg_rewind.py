#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: pgops.rewind developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: pg_rewind
short_description: Rewind a failed-over PostgreSQL primary so it can follow the new primary
version_added: 0.1.0
description:
  - Makes the stopped data directory O(target_pgdata) (the old primary after a failover) consistent
    with the source (the new primary) by copying only what changed after their timelines forked,
    as PostgreSQL's C(pg_rewind) does, for PostgreSQL 11 to 18, without needing C(pg_rewind) itself.
  - Finds the fork from the timeline histories, reads the target's WAL from the last common
    checkpoint to learn every block it changed, fetches those blocks and the files that must be
    copied whole from the source, then writes C(backup_label) and C(pg_control) so that the target,
    when started, replays the source's WAL from that checkpoint.
  - When the target does not need a rewind (same timeline, or it stopped before the fork), nothing
    is copied; with O(write_recovery_conf) only the standby configuration is ensured.
  - Before the first change a journal is made durable in C(<target_pgdata>/pgops_rewind/) and the
    target's C(pg_control) is set aside, so PostgreSQL will not start a half-rewound target.
  - Must run as the owner of O(target_pgdata) (C(become_user)); it refuses root.
  - One run at a time. The run locks O(target_pgdata) before it reads anything (check mode too);
    a second run fails at once with C(error_code=rewind_in_progress), naming the first, and touches
    nothing. The lock ends with the process that holds it.
  - Everything about the source that can refuse the run (reachable, same system, same major and
    layout, privileges, C(full_page_writes)) is checked before the target is changed in any way,
    crash recovery included; a server started on the target while the run plans is refused.
options:
  target_pgdata:
    description:
      - Data directory to rewind. Its server must be stopped (C(error_code=target_running)), except
        in check mode, which answers from a running server (see O(target_server)).
    type: path
    required: true
  target_server:
    description:
      - libpq connection string of the target's own server. Used only in check mode while that server
        runs (a dry run ahead of stopping it); its current WAL position is where the dry run reads
        the target's WAL to, as a stop would leave it. Without it, a dry run on a running target
        reads up to its latest checkpoint (a warning says so).
    type: str
    version_added: 0.2.0
  write_recovery_conf:
    description:
      - Configure the target as a standby of the source once rewound (also when no rewind is needed).
      - PostgreSQL 11 gets C(recovery.conf) (C(standby_mode), C(primary_conninfo),
        C(recovery_target_timeline = 'latest')); 12 and later get C(standby.signal) and
        C(primary_conninfo) in C(postgresql.auto.conf). Existing settings are replaced, never
        duplicated.
      - Values are quoted as PostgreSQL's configuration file parser and libpq read them back, so
        passwords with quotes, backslashes, spaces or any Unicode arrive intact.
      - Hot-standby settings of the target (C(max_connections), C(max_worker_processes),
        C(max_wal_senders), C(max_prepared_transactions), C(max_locks_per_transaction)) lower than
        the new primary's, with which the standby would refuse to start, are raised in
        C(postgresql.auto.conf) (also on PostgreSQL 11); see RV(settings_raised).
      - With O(keep_slot) (the default here) also C(primary_slot_name), the slot of O(reserve_wal).
    type: bool
    default: false
  primary_conninfo:
    description:
      - C(primary_conninfo) to write with O(write_recovery_conf).
      - Default is derived from O(source_server) (without its database, kept from 17 on), so the
        standby streams with the same TLS settings.
    type: str
  keep_files:
    description:
      - Paths, relative to the data directory, that are the target's own and stay as they are,
        never copied from the source, never removed. A directory keeps everything under it.
      - C(postgresql.auto.conf) copied from the source (when not kept) loses its upstream settings
        (C(primary_conninfo), C(primary_slot_name), recovery targets).
    type: list
    elements: str
    default: [postgresql.conf, pg_hba.conf, pg_ident.conf, postgresql.auto.conf]
  ensure_shutdown:
    description:
      - When the target was not shut down cleanly (crash, C(immediate) stop), first finish its crash
        recovery by running its own C(postgres) in single-user mode.
      - When false, such a target is refused.
    type: bool
    default: true
  bindir:
    description:
      - Directory with the target's PostgreSQL binaries (C(postgres)), for crash recovery,
        O(restore_target_wal) and reading the target's effective hot-standby settings
        (C(postgres -C)); without it they are not compared (a warning says so).
      - Found automatically in the usual package locations when not given.
    type: path
  config_file:
    description:
      - Server configuration file of the target when it lives outside the data directory
        (Debian's C(/etc/postgresql/...)), for the C(postgres) runs.
      - Without it, and without a C(postgresql.conf) in O(target_pgdata), the Debian cluster's
        (C(/etc/postgresql/<major>/<cluster>/postgresql.conf) whose C(data_directory) is
        O(target_pgdata)) is used, and returned as RV(config_file).
    type: path
  restore_target_wal:
    description: Use the target's own configured C(restore_command) for missing WAL segments
      (instead of O(restore_command)).
    type: bool
    default: false
  parallel:
    description:
      - Number of connections used to fetch from a O(source_server) at once.
      - C(0) chooses two per CPU of the target host, at least 4 and at most 8.
      - The WAL scan uses up to as many processes as the host has CPUs (at most 4).
    type: int
    default: 0
  max_rate:
    description:
      - Most bytes per second a rewind or a clone reads from a O(source_server), over all its
        connections together (O(parallel)), as C(pg_basebackup --max-rate) caps a base backup.
        C(0) sets no limit.
      - A number of bytes, or with the suffix C(k) (kilobytes) or C(M) (megabytes), 1024-based as
        for C(pg_basebackup); from C(32k) to C(1024M).
      - Counts the file ranges fetched and the files the source reads to checksum them (see
        RV(files_identical)), each charged before it is asked for, so the source is never asked for
        more than the rate; a run then lasts at least RV(bytes_fetched) / O(max_rate) seconds.
        The WAL scan (local) and the few small queries that plan the run are not counted.
      - With O(timeout), a run held back past its time fails with C(error_code=timeout) as any
        other.
      - Not for a O(source_pgdata), which is read on this host.
    type: raw
    default: 0
    version_added: 0.2.0
  sync:
    description: fsync what was written before declaring the rewind done. Turn off only for tests.
    type: bool
    default: true
  reserve_wal:
    description:
      - Before the first byte is copied, create a physical replication slot (O(slot_name)) on the
        O(source_server), reserving its WAL, so that a busy new primary cannot remove the WAL the
        rewound node asks for when it starts streaming (C(requested WAL segment ... has already
        been removed)).
      - An idle slot of that name that still reserves WAL is reused; one in use by another
        standby is refused (C(slot_in_use)).
      - Needs the REPLICATION attribute (or a superuser) for the role of O(source_server);
        without it the run is refused (C(source_no_replication)) unless this is false.
      - A run that fails before the rewind is complete drops the slot it created.
      - Nothing is reserved for a O(source_pgdata) (a stopped server removes no WAL).
    type: bool
    default: true
    version_added: 0.2.0
  slot_name:
    description:
      - Name of the slot O(reserve_wal) creates (lower-case letters, digits, underscores).
      - Default is C(pgops_rewind_<host name>) (this host's name, lower-cased, other characters
        as underscores).
      - A run completing an interrupted rewind uses the slot the interrupted run recorded.
    type: str
    version_added: 0.2.0
  keep_slot:
    description:
      - V(true) keeps the slot for the rewound standby to stream through (with
        O(write_recovery_conf) it is written as C(primary_slot_name)).
      - V(false) leaves it only until the node streams; then drop it (the role
        M(pgops.rewind.pg_rewind) does, or M(pgops.rewind.pg_physical_slot) with
        C(state=absent)). The result says C(slot.drop_after_streaming).
      - Default is the value of O(write_recovery_conf).
    type: bool
    version_added: 0.2.0
  progress_file:
    description:
      - JSON file, on the target host, where the rewind keeps its progress while it runs (phase,
        bytes done and total, percent, estimated seconds left), rewritten at most once a second;
        read it from another task while the module runs with C(async).
      - Default is C(<tmp>/pgops_rewind-progress-<data directory path>.json); an empty string
        turns it off. It is never written in check mode.
      - It is created with mode 0600 and never written through a symbolic link; when its path is
        held by a link or another user's file, the progress goes to
        C(<tmp>/pgops_rewind-<uid>/) instead, with a warning, and RV(progress_file) names it.
    type: str
  timeout:
    description:
      - Seconds the whole run may take; C(0) means no limit.
      - Checked between phases and bounding every request to O(source_server). On expiry the run
        stops with C(error_code=timeout), naming the phase. Expired before the first change, the
        target is untouched; later, it is left unstartable and running the same task again
        completes the rewind.
      - The local WAL scan is not interrupted midway; the limit is checked when it ends.
    type: int
    default: 0
    version_added: 0.2.0
  clone_discard_old:
    description:
      - When there is no room for the clone beside the old data directory, delete the old one
        instead of refusing. Everything the old primary holds is lost.
    type: bool
    default: false
    version_added: 0.2.0
  use_wal_summaries:
    description:
      - V(auto) finds the blocks the target changed after the fork in its WAL summaries
        (C(pg_wal/summaries), written when the old primary ran with C(summarize_wal = on),
        PostgreSQL 17 and later) where they cover the WAL from the last common checkpoint to
        the target's end of WAL, and scans only the stretches they do not cover (at least the
        last one, after the last checkpoint). Without usable summaries it scans the WAL as always.
      - V(never) always scans the target's WAL.
    type: str
    choices: [auto, never]
    default: auto
    version_added: 0.2.0
  discarded_file:
    description:
      - Also write RV(discarded) as JSON to this file on the target host (mode 0600, replaced
        atomically). Not written in check mode.
    type: path
    version_added: 0.2.0
attributes:
  check_mode:
    description: Can run in check mode and return changed status prediction without modifying the target.
    support: full
    details: A real dry run. Reads everything, plans, and returns the plan summary; writes nothing.
      Also on a running target, which a real run refuses (RV(target_running)).
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check mode), when in diff mode.
    support: full
    details: Returns per-action file counts and the files that cost the most to fetch.
  platform:
    description: Target OS/families that can be operated against.
    support: full
    platforms: posix
requirements:
  - psycopg2 on the managed node, for O(source_server)
notes:
  - The target needs data checksums or C(wal_log_hints = on) (from before the failover) and the
    source C(full_page_writes = on).
  - Tablespaces keep the target's own locations. A tablespace the source created after the fork
    is created at the source's location, which must be usable on the target host (WAL replay
    would create it there anyway).
  - Without the C(crc32c) Python package on the managed node, WAL checksums are computed in pure
    Python, which is much slower.
seealso:
  - module: pgops.rewind.pg_rewind_info
  - name: pg_rewind
    description: PostgreSQL's own tool, which this module re-implements.
    link: https://www.postgresql.org/docs/current/app-pgrewind.html
author:
  - pgops.rewind developers (@pgops)
extends_documentation_fragment:
  - pgops.rewind.connection
  - pgops.rewind.rejoin
"""

EXAMPLES = r"""
- name: Rewind the old primary from the new one and make it a standby
  pgops.rewind.pg_rewind:
    target_pgdata: /var/lib/postgresql/16/main
    config_file: /etc/postgresql/16/main/postgresql.conf
    source_server: "host=db2.example.com port=5432 user=rewind dbname=postgres"
    write_recovery_conf: true
    primary_conninfo: "host=db2.example.com port=5432 user=replicator application_name=db1"
  become: true
  become_user: postgres

- name: What would a rewind copy? (dry run)
  pgops.rewind.pg_rewind:
    target_pgdata: /var/lib/postgresql/16/main
    source_server: "{{ new_primary_conninfo }}"
  check_mode: true
  diff: true
  become: true
  become_user: postgres
  register: plan

- name: Fetch missing old WAL from the archive while rewinding
  pgops.rewind.pg_rewind:
    target_pgdata: /var/lib/pgsql/15/data
    source_server: "{{ new_primary_conninfo }}"
    restore_command: "pgbackrest --stanza=main archive-get %f %p"
  become: true
  become_user: postgres

- name: Rewind without reading more than 20 MB/s from the busy new primary
  pgops.rewind.pg_rewind:
    target_pgdata: /var/lib/postgresql/16/main
    login_host: db2.example.com
    login_user: rewind
    login_password: "{{ vault_rewind_password }}"
    login_db: postgres
    max_rate: 20M
    parallel: 4
    write_recovery_conf: true
  become: true
  become_user: postgres

- name: Rewind over verified TLS, giving up after 30 minutes
  pgops.rewind.pg_rewind:
    target_pgdata: /var/lib/postgresql/16/main
    source_server: >-
      host=db2.example.com user=rewind dbname=postgres sslmode=verify-full
      sslrootcert=/etc/postgresql/tls/ca.crt sslcert=/var/lib/postgresql/.tls/rewind.crt
      sslkey=/var/lib/postgresql/.tls/rewind.key
    write_recovery_conf: true
    timeout: 1800
    source_timeout: 120
  become: true
  become_user: postgres
"""

RETURN = r"""
rewind_required:
  description: Whether the target had to be rewound.
  returned: always
  type: bool
reason:
  description: C(diverged), C(same_timeline) or C(target_is_ancestor).
  returned: always
  type: str
twin_timeline:
  description:
    - The target's timeline has the number of one of the source's timelines but not its history
      (two promotions each created it); the fork is then where the histories really part.
  returned: when a source was compared
  type: bool
  version_added: 0.2.0
same_timeline_verified:
  description:
    - With RV(reason=same_timeline), whether the target's latest checkpoint record was found byte
      for byte in the source's WAL (false when one side no longer holds that WAL); null otherwise.
  returned: when a source was compared
  type: bool
  version_added: 0.2.0
wal_compared:
  description: The WAL ranges compared on both sides to tell twin timelines apart, with the result
    (C(same), C(different), C(not_available)).
  returned: when a source was compared
  type: list
  version_added: 0.2.0
  elements: dict
  sample: [{what: first record of timeline 2, start: 0/3000000, end: 0/3000100, result: different}]
  contains:
    what: {description: "What was compared.", type: str}
    start: {description: "Start of the range.", type: str}
    end: {description: "End of the range.", type: str}
    result: {description: "C(same), C(different) or C(not_available).", type: str}
divergence:
  description: Where the histories fork (null on the same timeline).
  returned: always
  type: dict
  sample: {timeline: 1, lsn: 0/37E49F8}
  contains:
    timeline: {description: "Last common timeline.", type: int}
    lsn: {description: "First WAL location not shared.", type: str}
last_common_checkpoint:
  description: Checkpoint replay restarts from (null when no rewind was needed).
  returned: always
  type: dict
  sample: {lsn: 0/37E4980, timeline: 1, redo: 0/37E4948}
  contains:
    lsn: {description: "Checkpoint record location.", type: str}
    timeline: {description: "Its timeline.", type: int}
    redo: {description: "Where replay starts.", type: str}
min_recovery_point:
  description: The target stays in recovery until it has replayed this far (the source's WAL
    position when the rewind finished).
  returned: when rewound
  type: dict
  sample: {lsn: 0/3C291B8, timeline: 2}
  contains:
    lsn: {description: "WAL location.", type: str}
    timeline: {description: "Its timeline (the source's).", type: int}
wal_fetched_again:
  description: WAL segments replay needs that the source recycled while the rewind copied, fetched
    again from it (or restored with O(restore_command)) before pg_control was written.
  returned: when there were any
  type: list
  elements: str
  version_added: 0.2.0
files:
  description: Files per action.
  returned: when a rewind is (or would be) done
  type: dict
  sample: {copied: 33, copied_tail: 1, copied_blocks: 18, truncated: 5, removed: 16, created: 0, kept: 6}
  contains:
    copied: {description: "Copied whole.", type: int}
    copied_tail: {description: "Relation files extended with the source's tail.", type: int}
    copied_blocks: {description: "Relation files patched block by block.", type: int}
    truncated: {description: "Relation files cut to the source's size.", type: int}
    removed: {description: "Removed (only on the target).", type: int}
    created: {description: "Directories and tablespace links created.", type: int}
    kept: {description: "Kept as the target has them (keep_files, WAL replay needs).", type: int}
blocks_copied:
  description: Changed blocks copied from the source.
  returned: when a rewind is (or would be) done
  type: int
bytes_to_fetch:
  description: Bytes the plan reads from the source.
  returned: when a rewind is (or would be) done
  type: int
bytes_fetched:
  description: Bytes actually read from the source (0 in check mode).
  returned: when a rewind is (or would be) done
  type: int
bytes_written:
  description: Bytes written into the target by the copy, by kind (not in check mode).
  returned: when a rewind is done
  type: dict
  version_added: 0.2.0
  contains:
    relation_blocks: {description: "Changed blocks and tails of relation files.", type: int}
    whole_files: {description: "Files copied whole, WAL excepted.", type: int}
    wal: {description: "WAL segments and timeline history files in pg_wal.", type: int}
  sample: {relation_blocks: 52428800, whole_files: 1253376, wal: 67108864}
wal_bytes_scanned:
  description: Bytes of target WAL read, from where the scan started (RV(wal_scan_start)) to its
    end (with WAL summaries, only the stretches they do not cover, and the WAL after the fork).
  returned: when a rewind is (or would be) done
  type: int
wal_bytes_common_skipped:
  description:
    - Bytes of target WAL from the last common checkpoint to the fork that were not read, because
      both sides share them and replay repairs every page they changed (see RV(wal_scan_start)).
    - 0 when the scan started at the last common checkpoint.
  returned: when a rewind is (or would be) done
  type: int
  version_added: 0.2.0
wal_scan_start:
  description:
    - Where the changed-block scan started reading the target's WAL, and why there.
    - At the V(divergence) (the first record after the switch point) when full_page_writes was on
      from the last common checkpoint to the fork, and the fork is the switch point of the
      timeline history files; else at the V(last_common_checkpoint), as PostgreSQL's pg_rewind.
  returned: when a rewind is (or would be) done
  type: dict
  version_added: 0.2.0
  contains:
    lsn: {description: "Where the scan started.", type: str}
    at: {description: "V(divergence) or V(last_common_checkpoint).", type: str}
    reason: {description: "Why there.", type: str}
  sample: {lsn: "0/5A1C2B8", at: divergence,
           reason: "full_page_writes on from the last common checkpoint to the fork"}
wal_scan_processes:
  description:
    - Processes that read the target's WAL. A long stretch of WAL is split at segment
      boundaries and read by up to 4 processes (at most one per CPU); a short one by 1.
  returned: when a rewind is (or would be) done
  type: int
  version_added: 0.2.0
wal_scan_ahead:
  description:
    - The diverged WAL was read while the common WAL was still being searched for the last
      common checkpoint (the scan starts at the divergence, and is long enough to be split
      over processes). Its C(wal_scan) time in RV(duration_s) is then only what was left
      after that search.
  returned: when a rewind is (or would be) done
  type: bool
  version_added: 0.2.0
wal_records_scanned:
  description: WAL records read in that range (0 when WAL summaries covered it all).
  returned: when a rewind is (or would be) done
  type: int
largest:
  description:
    - The files that cost the most to fetch, largest first (at most 10), with their action; also
      in the diff (C(--diff)).
  returned: when a rewind is (or would be) done
  type: list
  elements: dict
  sample: [{action: copy, bytes: 16777216, path: pg_wal/000000020000000000000003}]
  contains:
    action: {description: "C(copy), C(copy_tail), C(copy_blocks), C(truncate), C(remove), C(create), C(none)...", type: str}
    bytes: {description: "Bytes it costs to fetch.", type: int}
    path: {description: "Path in the data directory.", type: str}
changed_blocks_from:
  description: Where the changed blocks came from, V(wal_summaries) (see O(use_wal_summaries))
    or V(wal_scan).
  returned: when a rewind is (or would be) done
  type: str
  version_added: 0.2.0
  sample: wal_summaries
changed_blocks:
  description: Distinct relation blocks the target changed after the fork.
  returned: when a rewind is (or would be) done
  type: int
target_state_before:
  description: The target's cluster state as found, before any crash recovery (as pg_controldata prints it).
  returned: always
  type: str
  sample: shut down
target_timeline:
  description: Timeline of the target.
  returned: when a source was compared
  type: int
  sample: 1
source_timeline:
  description: Timeline of the source now (also right after a promotion, before its first checkpoint).
  returned: when a source was compared
  type: int
  sample: 2
target_wal_end:
  description: Where the target's WAL ends (end of its last checkpoint record, or its minimum recovery point).
  returned: when a source was compared
  type: str
  sample: 0/3F72010
crash_recovery:
  description: The target was not shut down cleanly and crash recovery was run (or would be) first.
  returned: when it happened
  type: bool
config_file:
  description: The Debian cluster's postgresql.conf found for the target (O(config_file) not given).
  returned: when found so
  type: str
  version_added: 0.2.0
target_running:
  description: The target's server runs; only a dry run (check mode) answers then, planning from
    its files as they are (see O(target_server)). A real run needs it stopped first.
  returned: check mode, when the target's server runs
  type: bool
  version_added: 0.2.0
settings_raised:
  description:
    - Hot-standby settings of the target lower than recorded in the control data the standby will
      replay from (the new primary's), with their effective value in the target's own configuration
      (C(from)) and the value they must be raised to (C(to)). Empty when none is lower or
      C(hot_standby) is off.
    - Written to C(postgresql.auto.conf) whether or not O(write_recovery_conf) is set, also when no
      rewind is needed (then C(changed)), because the node cannot start as a standby without them,
      whoever writes its standby configuration. Not in check mode.
    - Also in check mode. Missing (with a warning) when the target's C(postgres) binary is not found.
  returned: when the target's postgres binary is found
  type: dict
  version_added: 0.2.0
  sample: {max_connections: {from: 40, to: 60}}
  contains:
    max_connections:
      description: The setting, when it is raised.
      type: dict
      contains:
        from: {description: "Effective value in the target's configuration.", type: int}
        to: {description: "Value it is raised to.", type: int}
    max_worker_processes:
      description: The setting, when it is raised.
      type: dict
      contains:
        from: {description: "Effective value in the target's configuration.", type: int}
        to: {description: "Value it is raised to.", type: int}
    max_wal_senders:
      description: The setting, when it is raised.
      type: dict
      contains:
        from: {description: "Effective value in the target's configuration.", type: int}
        to: {description: "Value it is raised to.", type: int}
    max_prepared_transactions:
      description: The setting, when it is raised.
      type: dict
      contains:
        from: {description: "Effective value in the target's configuration.", type: int}
        to: {description: "Value it is raised to.", type: int}
    max_locks_per_transaction:
      description: The setting, when it is raised.
      type: dict
      contains:
        from: {description: "Effective value in the target's configuration.", type: int}
        to: {description: "Value it is raised to.", type: int}
standby_files_written:
  description: Standby configuration files written (or that would be) with O(write_recovery_conf).
  returned: with O(write_recovery_conf)
  type: list
  elements: str
duration_s:
  description: Seconds per phase (a phase that did not run is missing); C(checkpoint_walk) is
    the part of the facts spent walking back through the common WAL from the fork to the last
    common checkpoint.
  returned: always
  type: dict
  sample: {facts: 0.02, checkpoint_walk: 0.01, wal_scan: 0.23, plan: 0.4, copy: 0.1, finish: 0.13}
  contains:
    facts: {description: "Reading both sides' control data and timelines (and crash recovery).", type: float}
    checkpoint_walk: {description: "Of the facts, the walk back from the fork to the last common checkpoint.", type: float}
    wal_scan: {description: "Reading the target's WAL (or its summaries).", type: float}
    plan: {description: "Listing both sides and deciding what to do with each file.", type: float}
    copy: {description: "Fetching and writing.", type: float}
    finish: {description: "backup_label, pg_control, standby configuration, fsync.", type: float}
    clone: {description: "The clone fallback, all of it.", type: float}
progress_file:
  description: The progress file used (its last state says C(done) or C(failed)).
  returned: unless check mode or disabled
  type: str
  sample: /tmp/pgops_rewind-progress-var_lib_postgresql_16_main.json
source_tls:
  description: Whether the connection to O(source_server) used TLS, its protocol and sslmode.
  returned: with O(source_server), once connected
  type: dict
  version_added: 0.2.0
  sample: {in_use: true, protocol: TLSv1.3, sslmode: verify-full}
  contains:
    in_use: {description: "TLS was used.", type: bool}
    protocol: {description: "TLS protocol version (null without TLS).", type: str}
    sslmode: {description: "libpq sslmode of the connection.", type: str}
progress_overhead:
  description: What keeping the progress file cost (it is rewritten at most once a second).
  returned: always
  type: dict
  version_added: 0.2.0
  sample: {seconds: 0.016, updates: 100}
  contains:
    seconds: {description: "Seconds spent on progress bookkeeping and writes.", type: float}
    updates: {description: "Progress updates counted.", type: int}
files_identical:
  description: Whole files the target already had byte for byte (checksummed), so not copied.
  returned: when a rewind is (or would be) done
  type: int
rate_limit:
  description: What O(max_rate) did.
  returned: when O(max_rate) is set and the source is a server
  type: dict
  version_added: 0.2.0
  sample: {bytes_per_second: 20971520, waited_s: 12.5}
  contains:
    bytes_per_second: {description: "The limit, in bytes per second.", type: int, sample: 1048576}
    waited_s: {description: "Seconds requests waited for the limit, summed over connections.", type: float, sample: 12.5}
fetch_connections:
  description:
    - Connections the copy fetched over (see O(parallel)); 1 for a O(source_pgdata).
    - A clone reads whole files front to back and uses 2 unless O(parallel) is set.
  returned: when a rewind or a clone is (or would be) done
  type: int
  version_added: 0.2.0
path:
  description: V(clone) when the target was (or would be) rebuilt by the clone fallback.
  returned: when the clone fallback ran
  type: str
  version_added: 0.2.0
  sample: clone
clone_reason:
  description: Why a clone instead of a rewind.
  returned: when the clone fallback ran
  type: str
  version_added: 0.2.0
old_datadir:
  description: Where the old data directory was kept (renamed).
  returned: when the clone fallback ran
  type: str
  version_added: 0.2.0
  sample: /var/lib/postgresql/16/main.pgops-old-20261129T031500Z
old_discarded:
  description: The old data directory was deleted (O(clone_discard_old)).
  returned: when the clone fallback ran
  type: bool
  version_added: 0.2.0
slot:
  description: The replication slot reserving the source's WAL for the rewound node (O(reserve_wal)).
  returned: when a slot was reserved (or, in check mode, would be)
  type: dict
  version_added: 0.2.0
  sample: {name: pgops_rewind_db1, created: true, restart_lsn: 0/37E4AD8, keep: true, drop_after_streaming: false}
  contains:
    name: {description: "Slot name.", type: str}
    created: {description: "This run created it (in check mode, would create it); false when an idle slot was reused.", type: bool}
    restart_lsn: {description: "Where its reservation starts (null in check mode for a new slot).", type: str}
    keep: {description: "It stays for the standby (O(keep_slot)).", type: bool}
    drop_after_streaming: {description: "Drop it once the node streams.", type: bool}
resumed:
  description: The run completed a rewind that an earlier run had begun (from its journal).
  returned: when it happened
  type: bool
resumed_from:
  description: Where the interrupted rewind was taken up, V(copy) (fetching again what the journal
    lists) or V(finish) (everything was copied; only the last steps were left).
  returned: when an interrupted rewind was completed
  type: str
  sample: copy
discarded_file:
  description: The file RV(discarded) was written to (O(discarded_file)).
  returned: with O(discarded_file), unless check mode
  type: str
  sample: /var/lib/postgresql/discarded-db1.json
  version_added: 0.2.0
backup_stop_lsn:
  description: Where the clone's base backup ended (C(pg_backup_stop)); the node replays at least
    this far before it is consistent.
  returned: when the clone fallback ran (not in check mode)
  type: str
  sample: 0/5000100
  version_added: 0.2.0
wal_segments:
  description: WAL segments the clone copied (from the backup's start to its end).
  returned: when the clone fallback ran (not in check mode)
  type: int
  sample: 2
  version_added: 0.2.0
target:
  description: Control data of the target before the rewind (as M(pgops.rewind.pg_rewind_info) returns it).
  returned: always
  type: dict
  sample:
    pg_major: 16
    system_identifier: "7716020555193525302"
    state: shut down
    timeline: 1
    checkpoint_lsn: 0/3F71F98
    redo_lsn: 0/3F71F98
    checkpoint_timeline: 1
    min_recovery_point: 0/0
    min_recovery_point_timeline: 0
    data_checksums: true
    wal_log_hints: false
    full_page_writes: true
    wal_level: replica
    block_size: 8192
    wal_segment_size: 16777216
    pg_control_version: 1300
    catalog_version: 202307071
  contains:
    pg_major: {description: "PostgreSQL major version.", type: int, sample: 16}
    system_identifier: {description: "Database system identifier (a string, it exceeds 2^53).", type: str}
    state: {description: "Cluster state as pg_controldata prints it.", type: str, sample: shut down}
    timeline: {description: "Timeline the cluster is on.", type: int, sample: 1}
    checkpoint_lsn: {description: "Latest checkpoint location.", type: str, sample: 0/3000060}
    redo_lsn: {description: "Its redo location.", type: str}
    checkpoint_timeline: {description: "Its timeline.", type: int}
    min_recovery_point: {description: "Minimum recovery ending location.", type: str}
    min_recovery_point_timeline: {description: "Its timeline.", type: int}
    data_checksums: {description: "Data checksums are on.", type: bool}
    wal_log_hints: {description: "wal_log_hints was on at the last checkpoint.", type: bool}
    full_page_writes: {description: "full_page_writes was on at the last checkpoint.", type: bool}
    wal_level: {description: "wal_level setting.", type: str}
    block_size: {description: "Database block size.", type: int}
    wal_segment_size: {description: "Bytes per WAL segment.", type: int}
    pg_control_version: {description: "pg_control version number.", type: int}
    catalog_version: {description: "Catalog version number.", type: int}
source:
  description: Control data of the source, with the same keys as RV(target).
  returned: always
  type: dict
  sample:
    pg_major: 16
    system_identifier: "7716020555193525302"
    state: in production
    timeline: 2
    checkpoint_lsn: 0/3F71F98
    redo_lsn: 0/3F71F98
    checkpoint_timeline: 1
    min_recovery_point: 0/0
    min_recovery_point_timeline: 0
    data_checksums: true
    wal_log_hints: false
    full_page_writes: true
    wal_level: replica
    block_size: 8192
    wal_segment_size: 16777216
    pg_control_version: 1300
    catalog_version: 202307071
  contains:
    pg_major: {description: "PostgreSQL major version.", type: int, sample: 16}
    system_identifier: {description: "Database system identifier (a string, it exceeds 2^53).", type: str}
    state: {description: "Cluster state as pg_controldata prints it.", type: str, sample: shut down}
    timeline: {description: "Timeline the cluster is on.", type: int, sample: 1}
    checkpoint_lsn: {description: "Latest checkpoint location.", type: str, sample: 0/3000060}
    redo_lsn: {description: "Its redo location.", type: str}
    checkpoint_timeline: {description: "Its timeline.", type: int}
    min_recovery_point: {description: "Minimum recovery ending location.", type: str}
    min_recovery_point_timeline: {description: "Its timeline.", type: int}
    data_checksums: {description: "Data checksums are on.", type: bool}
    wal_log_hints: {description: "wal_log_hints was on at the last checkpoint.", type: bool}
    full_page_writes: {description: "full_page_writes was on at the last checkpoint.", type: bool}
    wal_level: {description: "wal_level setting.", type: str}
    block_size: {description: "Database block size.", type: int}
    wal_segment_size: {description: "Bytes per WAL segment.", type: int}
    pg_control_version: {description: "pg_control version number.", type: int}
    catalog_version: {description: "Catalog version number.", type: int}
rewind_in_progress:
  description: The run that holds the target, on failure with C(error_code=rewind_in_progress).
  returned: failure
  type: dict
  version_added: 0.2.0
  sample: {pid: 4242, host: db1, user: postgres, started: "2026-12-06T03:00:00Z", command: python3}
  contains:
    pid: {description: "Its process id (null when this host cannot see it).", type: int}
    host: {description: "The host it runs on.", type: str}
    user: {description: "The OS user it runs as.", type: str}
    started: {description: "When its process started (UTC).", type: str}
    command: {description: "Its program (arguments left out).", type: str}
discarded:
  description:
    - What the old primary did after the fork that the rewind throws away, counted from the same WAL
      the rewind reads (null when the changed blocks came from WAL summaries and the WAL was not read).
    - Relation names come from the source's catalog when it has the relation under the same
      relfilenode, else they are null.
  returned: when a rewind is (or would be) done
  type: dict
  version_added: 0.2.0
  sample:
    transactions: {committed: 9, aborted: 0, prepared: 0, xid_min: 732, xid_max: 740,
                   first_commit: "2026-12-06T03:00:33.604771+00:00",
                   last_commit: "2026-12-06T03:00:33.684274+00:00"}
    relations: [{database: postgres, schema: public, name: orders, relfilenode: 1663/5/16400,
                 inserted: 120, updated: 4, deleted: 0, created: false, truncated: false,
                 dropped: false}]
    databases: {created: [], dropped: []}
  contains:
    transactions:
      description: Transactions of the old primary after the fork.
      type: dict
      contains:
        committed: {description: "Committed.", type: int}
        aborted: {description: "Aborted.", type: int}
        prepared: {description: "Prepared and not finished.", type: int}
        xid_min: {description: "Lowest transaction id (null when none).", type: int}
        xid_max: {description: "Highest transaction id (null when none).", type: int}
        first_commit: {description: "Time of the first commit (ISO 8601, UTC; null when none).", type: str}
        last_commit: {description: "Time of the last commit (ISO 8601, UTC; null when none).", type: str}
    relations:
      description: One entry per relation touched.
      type: list
      elements: dict
      contains:
        database: {description: "Database name (null when the source does not know it).", type: str}
        schema: {description: "Schema name (null when the source does not know the relation).", type: str}
        name: {description: "Relation name (null when the source does not know the relation).", type: str}
        relfilenode: {description: "C(spcoid/dboid/relnumber).", type: str}
        inserted: {description: "Tuples inserted by committed or prepared transactions.", type: int}
        updated: {description: "Tuples updated (HOT included).", type: int}
        deleted: {description: "Tuples deleted.", type: int}
        created: {description: "The relation file was created.", type: bool}
        truncated: {description: "The relation was truncated.", type: bool}
        dropped: {description: "The relation was dropped.", type: bool}
    databases:
      description: Databases created and dropped (names where the source knows them, else oids).
      type: dict
      contains:
        created: {description: "Created.", type: list, elements: str}
        dropped: {description: "Dropped.", type: list, elements: str}
source_connection:
  description:
    - Host, port, role and database of the connection to the source, as built from
      O(source_server) and the options beside it (null where libpq's defaults apply). Never
      the password.
  returned: when the source is a server
  type: dict
  version_added: 0.2.0
  sample: {host: db2.example.com, port: 5432, user: rewind, dbname: postgres}
  contains:
    host: {description: "Host (or socket directory).", type: str, sample: db2.example.com}
    port: {description: "Port.", type: int, sample: 5432}
    user: {description: "Role.", type: str, sample: rewind}
    dbname: {description: "Database.", type: str, sample: postgres}
error_code:
  description: Stable code of the error, on failure (see the troubleshooting guide).
  returned: failure
  type: str
  sample: target_running
hint:
  description: What to do about the error, on failure.
  returned: failure
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pgops.rewind.plugins.module_utils.pg.datadir import DEFAULT_KEEP_FILES
from ansible_collections.pgops.rewind.plugins.module_utils.module_support import (
    SOURCE_MUTUALLY_EXCLUSIVE, check_connection, connection_shown, engine_params,
    protect_secrets, refuse_negative, rejoin_argument_spec, require_source, run_engine,
    source_conninfo)
from ansible_collections.pgops.rewind.plugins.module_utils.options import RewindOptions
from ansible_collections.pgops.rewind.plugins.module_utils.rewind import run


def main():
    argument_spec = rejoin_argument_spec()
    argument_spec.update(
        target_pgdata=dict(type="path", required=True),
        target_server=dict(type="str", no_log=True),
        write_recovery_conf=dict(type="bool", default=False),
        primary_conninfo=dict(type="str", no_log=True),
        keep_files=dict(type="list", elements="str", default=list(DEFAULT_KEEP_FILES)),
        ensure_shutdown=dict(type="bool", default=True),
        bindir=dict(type="path"),
        config_file=dict(type="path"),
        restore_target_wal=dict(type="bool", default=False),
        parallel=dict(type="int", default=0),
        max_rate=dict(type="raw", default=0),
        sync=dict(type="bool", default=True),
        progress_file=dict(type="str"),
        timeout=dict(type="int", default=0),
        clone_discard_old=dict(type="bool", default=False),
        discarded_file=dict(type="path"),
        use_wal_summaries=dict(type="str", default="auto", choices=["auto", "never"]),
        reserve_wal=dict(type="bool", default=True),
        slot_name=dict(type="str"),
        keep_slot=dict(type="bool"),
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        mutually_exclusive=SOURCE_MUTUALLY_EXCLUSIVE + [("restore_command", "restore_target_wal")],
        supports_check_mode=True,
    )
    params = module.params
    check_connection(module)
    require_source(module, pgdata_allowed=True)
    protect_secrets(module, params["primary_conninfo"])
    protect_secrets(module, params["target_server"])
    if params["parallel"] < 0:
        module.fail_json(msg="parallel must not be negative (0: two connections per CPU, "
                             "4 to 8).", error_code="bad_parameters")
    refuse_negative(module, "timeout")
    options = RewindOptions(check_mode=module.check_mode,
                            **dict(engine_params(params), source_server=source_conninfo(params)))
    result = run_engine(module, lambda: run(options))
    if options.source_server:
        result["source_connection"] = connection_shown(options.source_server)
    if module._diff and "files" in result:
        result["diff"] = {"prepared": _plan_text(result)}
    module.exit_json(**result)


def _plan_text(result):
    lines = ["files: " + ", ".join("%s %d" % item for item in sorted(result["files"].items())),
             "blocks: %d, bytes to fetch: %d" % (result["blocks_copied"], result["bytes_to_fetch"])]
    for item in result.get("largest", []):
        lines.append("  %-9s %12d  %s" % (item["action"], item["bytes"], item["path"]))
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
