#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: pgops.rewind developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: pg_rewind_info
short_description: Read a PostgreSQL data directory's control data and tell whether it must be rewound
version_added: 0.1.0
description:
  - Reads C(global/pg_control) of the data directory O(target_pgdata) (CRC-checked, PostgreSQL 11 to 18)
    and returns its control data.
  - Given a source (the new primary, by O(source_server) or O(source_pgdata)), it also finds where the
    two timelines forked, whether the target has to be rewound to follow the source, the last common
    checkpoint, and how much work a rewind would be (changed blocks, WAL to read).
  - With a source it also returns RV(plan), the path that rejoins the target (V(none), V(rewind) or
    V(clone)) with what each costs, and RV(preflight), the checks a run needs to pass (ownership,
    free space, WAL, the source's privileges, hint-bit protection), so a rejoin that cannot work is
    known before the old primary is stopped.
  - Changes nothing on the target. With a running source it reviews the replication slots
    M(pgops.rewind.pg_rewind) created there (RV(slots)), warns about each inactive one with the WAL
    it holds, and drops the node's own slot once the node streams without it (O(drop_unused_slot));
    that drop is the only change it makes (C(changed)).
  - While a M(pgops.rewind.pg_rewind) run works on O(target_pgdata), fails at once with
    C(error_code=rewind_in_progress) and RV(rewind_in_progress) naming that run (the target's files
    are changing), so a role or playbook can stop before it stops or changes anything.
options:
  target_pgdata:
    description:
      - Data directory of the cluster to examine (usually the failed-over old primary).
      - The server on it may be running; the answer is most useful when it is stopped.
    type: path
    required: true
  target_server:
    description:
      - libpq connection string of the target's own server, when it may be running.
      - Adds RV(server) to the result (is it running, a standby, streaming, how far behind).
      - Or give its parts with the options named as the source's, prefixed C(target_)
        (O(target_login_host), O(target_port), O(target_login_password), ...); they
        override the same keys of this string, as the source's options do for
        O(source_server).
    type: str
  config_file:
    description:
      - The target's C(postgresql.conf) when it lives outside the data directory. Without it, it is
        found from the running server (O(target_server)), in the data directory, or in Debian's
        layout (the C(/etc/postgresql/<major>/<cluster>/postgresql.conf) whose C(data_directory) is
        O(target_pgdata)); see RV(config) and the preflight check C(config_file).
    type: path
    version_added: 0.2.0
  check_replication:
    description: Also check that the source role may create a replication slot (C(REPLICATION)).
    type: bool
    default: false
    version_added: 0.2.0
  slot_name:
    description:
      - The replication slot M(pgops.rewind.pg_rewind) reserves for this node on the source (its
        O(pgops.rewind.pg_rewind#module:slot_name)); default C(pgops_rewind_<host name>), as there.
      - Used to tell the node's own slot among the slots of this collection on the source.
    type: str
    version_added: 0.2.0
  drop_unused_slot:
    description:
      - Drop the node's slot (O(slot_name)) when it is inactive while the node runs as a standby
        whose WAL receiver streams without it (another slot or none), since the slot then keeps the
        source's WAL for no one. This is how a slot left by M(pgops.rewind.pg_rewind) with
        C(keep_slot=false) (its default without O(pgops.rewind.pg_rewind#module:write_recovery_conf))
        does not outlive its purpose.
      - The node's state is read from O(target_server); without it, when the node's server runs,
        through its Unix socket (the directory and port its C(postmaster.pid) names) as the user the
        module runs as. A node that cannot be asked is not known to stream, and nothing is dropped
        (inactive slots are still reported with a warning).
      - Not in check mode (RV(slots) says C(unused)). V(false) only reports.
    type: bool
    default: true
    version_added: 0.2.0
  restore_command:
    version_added: 0.2.0
attributes:
  check_mode:
    description: Can run in check mode and return changed status prediction without modifying the target.
    support: full
    details: In check mode it drops no replication slot (see O(drop_unused_slot)); it never changes the target.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check mode), when in diff mode.
    support: none
  platform:
    description: Target OS/families that can be operated against.
    support: full
    platforms: posix
requirements:
  - psycopg2 on the managed node, only for O(source_server)
notes:
  - The WAL scan reads the target's WAL from the last common checkpoint to its end; on a big
    divergence that takes a while (the same reading a rewind does).
  - Without the C(crc32c) Python package on the managed node, WAL checksums are computed in pure
    Python, which is much slower.
seealso:
  - module: pgops.rewind.pg_rewind
author:
  - pgops.rewind developers (@pgops)
extends_documentation_fragment:
  - pgops.rewind.connection
  - pgops.rewind.connection.target
  - pgops.rewind.rejoin
"""

EXAMPLES = r"""
- name: Control data of the old primary
  pgops.rewind.pg_rewind_info:
    target_pgdata: /var/lib/postgresql/16/main
  become: true
  become_user: postgres
  register: old_primary

- name: Does the old primary need a rewind to follow the new one?
  pgops.rewind.pg_rewind_info:
    target_pgdata: /var/lib/postgresql/16/main
    source_server: "host=db2.example.com port=5432 user=rewind dbname=postgres"
  become: true
  become_user: postgres
  register: rewind_check

- name: Report
  ansible.builtin.debug:
    msg: >-
      rewind required: {{ rewind_check.rewind_required }},
      fork at {{ rewind_check.divergence.lsn | default('-') }},
      {{ rewind_check.changed_blocks }} changed blocks

- name: Before stopping anything, make sure a rejoin can work
  pgops.rewind.pg_rewind_info:
    target_pgdata: /var/lib/postgresql/16/main
    source_server: "host=db2.example.com port=5432 user=rewind dbname=postgres"
    fallback: clone
  become: true
  become_user: postgres
  register: assessment

- name: Stop here when a check fails
  ansible.builtin.assert:
    that: assessment.preflight | rejectattr('ok') | list | length == 0
    fail_msg: "{{ assessment.preflight | rejectattr('ok') | map(attribute='message') | join('; ') }}"
"""

RETURN = r"""
target:
  description: Control data of the target.
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
  returned: when a source is given
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
rewind_required:
  description: Whether the target must be rewound before it can follow the source.
  returned: when a source is given
  type: bool
reason:
  description:
    - Why a rewind is or is not required.
    - C(same_timeline), both are on the same timeline; C(target_is_ancestor), the target's WAL ends at
      or before the fork; C(diverged), the target wrote WAL the source does not have;
      C(interrupted), a rewind of the target began and did not complete (RV(rewind_interrupted)).
    - The same timeline is decided from the history files' contents and the WAL, never from the
      timeline number alone (see RV(twin_timeline)).
  returned: when a source is given
  type: str
  sample: diverged
rewind_interrupted:
  description:
    - A rewind began changing the target and did not complete; its C(pg_control) is set aside until
      the same rewind is run again.
    - RV(target) is then the control data from before that rewind (the major version checked
      against C(PG_VERSION)), RV(divergence) and RV(last_common_checkpoint) come from its journal.
  returned: when a rewind of the target was interrupted
  type: bool
  version_added: 0.2.0
twin_timeline:
  description:
    - The target's timeline has the number of one of the source's timelines but not its history
      (two standbys promoted each on its own); the fork is where the histories really part.
  returned: when a source is given
  type: bool
  version_added: 0.2.0
same_timeline_verified:
  description:
    - With RV(reason=same_timeline), whether the target's latest checkpoint record was found byte for
      byte in the source's WAL (false when one side no longer holds that WAL); null otherwise.
  returned: when a source is given
  type: bool
  version_added: 0.2.0
wal_compared:
  description: The WAL ranges compared on both sides to tell twin timelines apart, with the result
    (C(same), C(different), C(not_available)).
  returned: when a source is given
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
  description: Where the histories fork; null when both are on the same timeline.
  returned: when a source is given
  type: dict
  sample: {timeline: 1, lsn: 0/37E49F8}
  contains:
    timeline: {description: "Last common timeline.", type: int, sample: 1}
    lsn: {description: "First WAL location not shared.", type: str, sample: 0/3009608}
last_common_checkpoint:
  description: The checkpoint a rewound target restarts replay from; null when no rewind is required.
  returned: when a source is given
  type: dict
  sample: {lsn: 0/37E4980, timeline: 1, redo: 0/37E4948}
  contains:
    lsn: {description: "Location of the checkpoint record.", type: str}
    timeline: {description: "Its timeline.", type: int}
    redo: {description: "Where replay starts.", type: str}
target_wal_end:
  description: Where the target's WAL ends (end of its last checkpoint record, or its minimum recovery point).
  returned: when a source is given
  type: str
target_timeline:
  description: Timeline of the target.
  returned: when a source is given
  type: int
source_timeline:
  description: Timeline of the source now (also right after a promotion, before its first checkpoint).
  returned: when a source is given
  type: int
changed_blocks:
  description: Number of relation blocks the target changed after the fork (blocks a rewind copies back).
  returned: when a source is given
  type: int
changed_relation_files:
  description: Number of relation segment files those blocks are in.
  returned: when a source is given
  type: int
wal_bytes:
  description: Bytes of target WAL a rewind reads (from the fork, or from the last common
    checkpoint when it must, to the end).
  returned: when a source is given
  type: int
wal_bytes_common_skipped:
  description: Bytes of target WAL from the last common checkpoint to the fork a rewind does not
    read (both sides share them; 0 when it must read them).
  returned: when a source is given
  type: int
  version_added: 0.2.0
wal_records:
  description: Number of WAL records in that range.
  returned: when a source is given
  type: int
file_events:
  description: Counts of records that create, truncate or drop files or databases in the WAL a rewind
    reads (with WAL summaries, only in the WAL stretches they do not cover).
  returned: when a source is given
  type: dict
  sample: {create_file: 6, truncate_file: 1}
  contains:
    create_file: {description: "Relation files created.", type: int}
    truncate_file: {description: "Relation truncations.", type: int}
    create_database: {description: "Databases created.", type: int}
    drop_database: {description: "Databases dropped.", type: int}
    relmap: {description: "Relation map updates.", type: int}
changed_blocks_from:
  description: Where the changed blocks came from, V(wal_summaries) (the target ran with
    C(summarize_wal) on PostgreSQL 17 or later and its summaries cover the range) or
    V(wal_scan); null when no rewind is needed.
  returned: when a source is given
  type: str
  version_added: 0.2.0
server:
  description: State of the target's running server.
  returned: when O(target_server) is given
  type: dict
  sample: {running: true, in_recovery: true, timeline: 2, wal_position: 0/3C291B8,
           wal_receiver: {status: streaming, streaming: true, sender_host: db2.example.com,
                          sender_port: 5432, slot_name: db1, timeline: 2},
           replay_lag_bytes: 0}
  contains:
    running: {description: "Whether a connection succeeded.", type: bool}
    error: {description: "Why not, when it did not; or why its status could not be read (it stopped answering).", type: str}
    error_code: {description: "Stable code of that error (see the troubleshooting guide).", type: str}
    in_recovery: {description: "The server is a standby.", type: bool}
    timeline: {description: "Timeline it writes or receives.", type: int}
    wal_position: {description: "Current WAL location (replayed, for a standby).", type: str}
    received_position: {description: "Last WAL location received (a standby).", type: str}
    server_version_num: {description: "Its server_version_num.", type: int, sample: 160004}
    config_file: {description: "The configuration file it runs with (superusers, pg_read_all_settings).", type: str}
    hba_file: {description: "Its pg_hba.conf.", type: str}
    ident_file: {description: "Its pg_ident.conf.", type: str}
    wal_receiver:
      description: Its WAL receiver (null when none runs).
      type: dict
      contains:
        status: {description: "pg_stat_wal_receiver status.", type: str, sample: streaming}
        streaming: {description: "status is streaming.", type: bool}
        sender_host: {description: "Upstream host.", type: str}
        sender_port: {description: "Upstream port.", type: int}
        slot_name: {description: "Replication slot used.", type: str}
        timeline: {description: "Timeline received.", type: int}
    replay_lag_bytes:
      description: Bytes of the source's WAL not yet replayed (with a running source).
      type: int
plan:
  description: The path that rejoins the target and what it costs.
  returned: when a source is given
  type: dict
  version_added: 0.2.0
  sample: {path: rewind, reason: "the histories diverged; a rewind copies only what changed",
           rewind_bytes: 43317314, wal_bytes: 7919272, clone_bytes: 95877198}
  contains:
    path:
      description: V(none) (no rewind needed), V(rewind), or V(clone) (a rewind is impossible, or with
        O(clone_when=cheaper) dearer).
      type: str
      sample: rewind
    reason: {description: "Why this path.", type: str}
    rewind_bytes: {description: "Bytes a rewind fetches from the source.", type: int}
    wal_bytes: {description: "Bytes of target WAL a rewind reads.", type: int}
    clone_bytes: {description: "Bytes a clone copies.", type: int}
preflight:
  description:
    - Checks a run of the chosen path needs to pass, each V({check, ok, message}).
    - C(config_file) (the target's configuration was found, see RV(config)), C(target_writable),
      C(hint_protection), C(source_privileges), C(replication_privilege) (with
      O(check_replication)), C(wal_available), C(rewind_possible) (when the path is V(clone)),
      C(clone_privileges) (when the clone fallback will run), C(target_space) (one per
      filesystem written to).
  returned: when a source is given
  type: list
  version_added: 0.2.0
  elements: dict
  sample: [{check: target_space, ok: true, message: "/: 130 MB to write (with margin), 41000 MB free"}]
  contains:
    check: {description: "Name of the check.", type: str}
    ok: {description: "It passed.", type: bool}
    message: {description: "What was found, or what to do.", type: str}
slots:
  description:
    - The physical replication slots of this collection on the source (named C(pgops_rewind_...),
      or O(slot_name)); each inactive one also gives a warning with the WAL it holds.
  returned: when O(source_server) is given
  version_added: 0.2.0
  type: list
  elements: dict
  contains:
    name: {description: "Slot name.", type: str}
    active: {description: "A walsender streams through it.", type: bool}
    restart_lsn: {description: "Oldest WAL it keeps (null: none).", type: str}
    wal_held_bytes: {description: "The source's WAL position minus restart_lsn.", type: int}
    unused:
      description: The node's slot, inactive while the node streams without it (O(drop_unused_slot)).
      type: bool
    dropped: {description: "Dropped by this run.", type: bool}
  sample: [{name: pgops_rewind_db1, active: false, restart_lsn: 0/3000028, wal_held_bytes: 50331648,
            unused: true, dropped: true}]
config:
  description:
    - Where the target's configuration files are, found before anything is stopped.
  returned: when a source is given (and no interrupted rewind is reported)
  type: dict
  version_added: 0.2.0
  contains:
    config_file: {description: "Its postgresql.conf (null when not found).", type: str}
    hba_file: {description: "Its pg_hba.conf (null when unknown).", type: str}
    ident_file: {description: "Its pg_ident.conf (null when unknown).", type: str}
    found_by:
      description: V(given) (O(config_file)), V(server) (the running server's C(config_file)),
        V(data_directory), V(debian_layout), or null (not found; the check C(config_file) fails).
      type: str
    outside_data_directory: {description: "postgresql.conf is not in the data directory.", type: bool}
  sample: {config_file: /etc/postgresql/15/main/postgresql.conf, hba_file: /etc/postgresql/15/main/pg_hba.conf,
           ident_file: /etc/postgresql/15/main/pg_ident.conf, found_by: debian_layout,
           outside_data_directory: true}
rewind_in_progress:
  description:
    - The M(pgops.rewind.pg_rewind) run that holds the target, when one does (the module then fails
      with C(error_code=rewind_in_progress)); null otherwise.
  returned: success, and failure with C(error_code=rewind_in_progress)
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
    - What the target did after the fork that a rewind would throw away (transactions, tuples per
      relation, files and databases created or dropped), as M(pgops.rewind.pg_rewind) returns it.
  returned: when a source is given and a rewind is needed
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
target_connection:
  description:
    - Host, port, role and database of the connection to the target's own server, as built
      from O(target_server) and the C(target_) options (null where libpq's defaults apply). Never
      the password.
  returned: when O(target_server) or the C(target_) options are given
  type: dict
  version_added: 0.2.0
  sample: {host: db1.example.com, port: 5432, user: rewind, dbname: postgres}
  contains:
    host: {description: "Host (or socket directory).", type: str, sample: db1.example.com}
    port: {description: "Port.", type: int, sample: 5432}
    user: {description: "Role.", type: str, sample: rewind}
    dbname: {description: "Database.", type: str, sample: postgres}
error_code:
  description: Stable code of the error, on failure (see the troubleshooting guide).
  returned: failure
  type: str
  sample: different_system
hint:
  description: What to do about the error, on failure.
  returned: failure
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pgops.rewind.plugins.module_utils.module_support import (
    SOURCE_MUTUALLY_EXCLUSIVE, TARGET_PREFIX, check_connection, connection_shown,
    login_argument_spec, rejoin_argument_spec, require_source, run_engine, source_conninfo,
    target_conninfo)
from ansible_collections.pgops.rewind.plugins.module_utils.plan.assessment import inspect_and_assess
from ansible_collections.pgops.rewind.plugins.module_utils.source.factory import open_source
from ansible_collections.pgops.rewind.plugins.module_utils.standby.unused_slots import (
    node_status, review_slots)
from ansible_collections.pgops.rewind.plugins.module_utils.standby.walreserve import default_slot_name


def main():
    argument_spec = rejoin_argument_spec()
    argument_spec.update(
        target_pgdata=dict(type="path", required=True),
        target_server=dict(type="str", no_log=True),
        check_replication=dict(type="bool", default=False),
        slot_name=dict(type="str"),
        drop_unused_slot=dict(type="bool", default=True),
        config_file=dict(type="path"),
    )
    argument_spec.update(login_argument_spec(TARGET_PREFIX))
    module = AnsibleModule(argument_spec=argument_spec,
                           mutually_exclusive=SOURCE_MUTUALLY_EXCLUSIVE,
                           supports_check_mode=True)
    params = module.params
    check_connection(module, target_conninfo)
    if source_conninfo(params) or params["source_pgdata"]:
        require_source(module, pgdata_allowed=True)
    target_server = target_conninfo(params)

    def work():
        source = open_source(source_conninfo(params), params["source_pgdata"],
                             connect_timeout=params["connect_timeout"],
                             source_timeout=params["source_timeout"])
        try:
            result = inspect_and_assess(
                params["target_pgdata"], source, target_server,
                restore_command=params["restore_command"], fallback=params["fallback"],
                clone_when=params["clone_when"], replication=params["check_replication"],
                config_file=params["config_file"],
                allow_older_source=params["allow_older_source"])
        finally:
            if source is not None:
                source.close()
        if source_conninfo(params):
            review = review_slots(source_conninfo(params),
                                  params["slot_name"] or default_slot_name(),
                                  node_status(params["target_pgdata"], result.get("server")),
                                  drop=params["drop_unused_slot"] and not module.check_mode,
                                  connect_timeout=params["connect_timeout"],
                                  request_timeout=params["source_timeout"])
            result["slots"] = review["slots"]
            result["changed"] = review["changed"]
            result.setdefault("warnings", []).extend(review["warnings"])
        return result

    result = run_engine(module, work)
    if source_conninfo(params):
        result["source_connection"] = connection_shown(source_conninfo(params))
    if target_server:
        result["target_connection"] = connection_shown(target_server)
    module.exit_json(**dict({"changed": False}, **result))


if __name__ == "__main__":
    main()
