# -*- coding: utf-8 -*-
# Copyright: pgops.rewind developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The options pg_rewind and pg_rewind_info share beside the connection: a stopped source
instead of a server, WAL the target lacks, and the path when a rewind is impossible.

The argument spec is module_support.rejoin_argument_spec(); the defaults stated here are
the engine's (plan/assessment.py), and tests/unit/plugins/test_shared_options.py fails
when the two disagree.
"""

from __future__ import annotations


class ModuleDocFragment:

    DOCUMENTATION = r"""
options:
  source_pgdata:
    description:
      - Data directory of a cleanly shut down source cluster on the same host, instead of
        O(source_server) (the two are mutually exclusive).
      - M(pgops.rewind.pg_rewind) needs one of the two; M(pgops.rewind.pg_rewind_info) without
        either reads only the target's control data.
    type: path
  restore_command:
    description:
      - Shell command that fetches a WAL segment the target no longer has (C(%f) file name, C(%p)
        destination path), as in C(restore_command).
      - Used only for segments missing from the target's C(pg_wal);
        M(pgops.rewind.pg_rewind_info) counts the segments it can restore as present.
      - It may hold archive credentials, so it is treated as a secret (C(no_log)) and never
        appears in results.
    type: str
  fallback:
    description:
      - What to do when a rewind is impossible (no common history, the target's WAL since the last
        common checkpoint gone and not restorable, neither data checksums nor C(wal_log_hints)).
      - V(fail) refuses, changing nothing; M(pgops.rewind.pg_rewind_info) then fails its preflight
        check C(rewind_possible).
      - V(clone) rebuilds the target from O(source_server) as a base backup does (over the same
        connection, with the functions C(pg_backup_start) and C(pg_backup_stop)), tablespaces
        included, crash-safe and resumable like a rewind. The old data directory is kept, renamed
        to C(<target_pgdata>.pgops-old-<timestamp>) (tablespace contents likewise), unless
        O(pgops.rewind.pg_rewind#module:clone_discard_old). M(pgops.rewind.pg_rewind_info) checks
        what the clone needs.
    type: str
    choices: [fail, clone]
    default: fail
    version_added: 0.2.0
  clone_when:
    description:
      - When the path is a clone rather than a rewind. V(impossible), only when a rewind cannot
        work; V(cheaper), also when copying everything moves fewer bytes than the rewind (bytes
        fetched plus WAL read); V(always), whenever the histories diverged.
      - M(pgops.rewind.pg_rewind) clones only with O(fallback=clone);
        M(pgops.rewind.pg_rewind_info) plans the path by the same rule.
    type: str
    choices: [impossible, cheaper, always]
    default: impossible
    version_added: 0.2.0
  allow_older_source:
    description:
      - Rewind a target whose timeline history descends from the source's current timeline.
        Such a target was promoted from the source's timeline later, so it is the newer primary
        (typically the inventory's or the task's two nodes are swapped, or the source is the old
        primary restarted during a split brain); rewinding it onto the source discards
        everything it wrote since its promotion.
      - V(false) refuses with error code C(wrong_direction) before anything is changed, naming
        both timelines; M(pgops.rewind.pg_rewind_info) then fails its preflight check
        C(direction).
      - V(true) only to return to the old primary on purpose. Twin timelines (the same number
        with different histories) are not concerned.
    type: bool
    default: false
    version_added: 0.2.0
"""
