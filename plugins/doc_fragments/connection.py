# -*- coding: utf-8 -*-
# Copyright: pgops.rewind developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""How every module of the collection reaches the new primary.

The argument spec is module_support.connection_argument_spec(); the defaults stated here
are the engine's (source/connection.py), and tests/unit/plugins/test_shared_options.py
fails when the two disagree. Connection options given beside the connection string
belong in this fragment and in that function, nowhere else.
"""

from __future__ import annotations


class ModuleDocFragment:

    DOCUMENTATION = r"""
options:
  source_server:
    description:
      - libpq connection string (or URI) of the source, normally the new primary; a hot standby of
        it may be the source of a rewind too. An ordinary, non-replication connection.
      - Reading the source's files (M(pgops.rewind.pg_rewind), M(pgops.rewind.pg_rewind_info)) needs
        a superuser or a role granted EXECUTE on C(pg_ls_dir(text, boolean, boolean)),
        C(pg_stat_file(text, boolean)), C(pg_read_binary_file(text)) and
        C(pg_read_binary_file(text, bigint, bigint, boolean)); replication slots
        (M(pgops.rewind.pg_physical_slot), O(pgops.rewind.pg_rewind#module:reserve_wal)) need the
        REPLICATION attribute.
      - A password in it is kept out of results and logs; a C(.pgpass) file of the OS user the
        module runs as keeps it out of the inventory too.
      - For TLS give C(sslmode=verify-full) (or C(verify-ca)) and C(sslrootcert), and for a client
        certificate C(sslcert) and C(sslkey), as absolute paths on the managed node. A certificate
        that does not verify fails the task with C(error_code=source_tls_failed) before anything is
        changed. C(sslrootcert) with a weaker C(sslmode) is refused (C(error_code=source_tls_weak)),
        as libpq would then fall back to an unverified connection.
      - This option, O(connect_timeout) and O(source_timeout) are taken by every module of the
        collection, so C(module_defaults) can set them once for the action group
        C(group/pgops.rewind.all).
    type: str
  connect_timeout:
    description:
      - Seconds to wait for a connection to O(source_server), when it does not set
        C(connect_timeout) itself; C(0) waits indefinitely.
    type: int
    default: 30
    version_added: 0.2.0
  source_timeout:
    description:
      - Seconds one request to O(source_server) may take; C(0) means no limit.
      - Set as C(statement_timeout) in the source session. M(pgops.rewind.pg_rewind) and
        M(pgops.rewind.pg_rewind_info) enforce it on the managed node too (a few seconds later), so
        a source that stops answering (a hung server, a network that drops packets) fails the task
        with C(error_code=source_timeout) instead of hanging it.
      - Each request of a rewind reads at most 8 MB or a thousand ranges, so the default leaves
        ample room.
    type: int
    default: 300
    version_added: 0.2.0
"""
