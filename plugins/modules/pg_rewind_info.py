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
  - Changes nothing, on the target or on the source.
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
    type: str
  check_replication:
    description: Also check that the source role may create a replication slot (C(REPLICATION)).
    type: bool
    default: false
    version_added: 0.2.0
  restore_command:
    version_added: 0.2.0
attributes:
  check_mode:
    description: Can run in check mode and return changed status prediction without modifying the target.
    support: full
    details: The module never changes anything.
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
twin_timeline:
  description:
    - The target's timeline has the number of one of the source's timelines but not its history
      (two standbys promoted each on its own); the fork is where the histories really part.
  returned: when a source is given
  type: bool
same_timeline_verified:
  description:
    - With RV(reason=same_timeline), whether the target's latest checkpoint record was found byte for
      byte in the source's WAL (false when one side no longer holds that WAL); null otherwise.
  returned: when a source is given
  type: bool
wal_compared:
  description: The WAL ranges compared on both sides to tell twin timelines apart, with the result
    (C(same), C(different), C(not_available)).
  returned: when a source is given
  type: list
  elements: dict
divergence:
  description: Where the histories fork; null when both are on the same timeline.
  returned: when a source is given
  type: dict
  contains:
    timeline: {description: "Last common timeline.", type: int, sample: 1}
    lsn: {description: "First WAL location not shared.", type: str, sample: 0/3009608}
last_common_checkpoint:
  description: The checkpoint a rewound target restarts replay from; null when no rewind is required.
  returned: when a source is given
  type: dict
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
  description: Bytes of target WAL a rewind reads (from the last common checkpoint to the end).
  returned: when a source is given
  type: int
wal_records:
  description: Number of WAL records in that range.
  returned: when a source is given
  type: int
file_events:
  description: Counts of records that create, truncate or drop files or databases after the checkpoint
    (with WAL summaries, only in the WAL stretches they do not cover).
  returned: when a source is given
  type: dict
changed_blocks_from:
  description: Where the changed blocks came from, V(wal_summaries) (the target ran with
    C(summarize_wal) on PostgreSQL 17 or later and its summaries cover the range) or
    V(wal_scan); null when no rewind is needed.
  returned: when a source is given
  type: str
server:
  description: State of the target's running server.
  returned: when O(target_server) is given
  type: dict
  contains:
    running: {description: "Whether a connection succeeded.", type: bool}
    error: {description: "Why not, when it did not; or why its status could not be read (it stopped answering).", type: str}
    error_code: {description: "Stable code of that error (see the troubleshooting guide).", type: str}
    in_recovery: {description: "The server is a standby.", type: bool}
    timeline: {description: "Timeline it writes or receives.", type: int}
    wal_position: {description: "Current WAL location (replayed, for a standby).", type: str}
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
    - C(target_writable), C(hint_protection), C(source_privileges), C(replication_privilege) (with
      O(check_replication)), C(wal_available), C(rewind_possible) (when the path is V(clone)),
      C(clone_privileges) (when the clone fallback will run), C(target_space) (one per
      filesystem written to).
  returned: when a source is given
  type: list
  elements: dict
  sample: [{check: target_space, ok: true, message: "/: 130 MB to write (with margin), 41000 MB free"}]
rewind_in_progress:
  description:
    - The M(pgops.rewind.pg_rewind) run that holds the target, when one does (the module then fails
      with C(error_code=rewind_in_progress)); null otherwise.
  returned: success, and failure with C(error_code=rewind_in_progress)
  type: dict
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
    SOURCE_MUTUALLY_EXCLUSIVE, check_connection, protect_secrets, rejoin_argument_spec, run_engine,
    source_conninfo)
from ansible_collections.pgops.rewind.plugins.module_utils.plan.assessment import inspect_and_assess
from ansible_collections.pgops.rewind.plugins.module_utils.source.factory import open_source


def main():
    argument_spec = rejoin_argument_spec()
    argument_spec.update(
        target_pgdata=dict(type="path", required=True),
        target_server=dict(type="str", no_log=True),
        check_replication=dict(type="bool", default=False),
    )
    module = AnsibleModule(argument_spec=argument_spec,
                           mutually_exclusive=SOURCE_MUTUALLY_EXCLUSIVE,
                           supports_check_mode=True)
    params = module.params
    check_connection(module)
    protect_secrets(module, params["target_server"])

    def work():
        source = open_source(source_conninfo(params), params["source_pgdata"],
                             connect_timeout=params["connect_timeout"],
                             source_timeout=params["source_timeout"])
        try:
            return inspect_and_assess(
                params["target_pgdata"], source, params["target_server"],
                restore_command=params["restore_command"], fallback=params["fallback"],
                clone_when=params["clone_when"], replication=params["check_replication"])
        finally:
            if source is not None:
                source.close()

    result = run_engine(module, work)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
