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
      - This option, the community.postgresql style options beside it (O(login_host) to
        O(connect_params)), O(connect_timeout) and O(source_timeout) are taken by every module
        of the collection, so C(module_defaults) can set them once for the action group
        C(group/pgops.rewind.all).
      - The source may be given by this string, by the options O(login_host), O(port),
        O(login_user), O(login_password), O(login_db), O(login_unix_socket), O(ssl_mode),
        O(ca_cert), O(ssl_cert), O(ssl_key) and O(connect_params) (as in
        community.postgresql's modules), or both. Each option given overrides the same
        key of the string (O(connect_params) last of all), so a shared string can name the
        host while a vaulted O(login_password) comes from elsewhere. Combining options
        with a URI (C(postgresql://...)) is refused; write the string as key=value pairs.
      - The result's RV(pgops.rewind.pg_rewind#module:source_connection) shows the host,
        port, user and database connected to, never the password.
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
  login_host:
    description:
      - Host of the source (C(host) in the connection string), as in community.postgresql.
      - Unlike community.postgresql, nothing is assumed when it is not given; the value
        comes from O(source_server), else libpq's defaults (C(PGHOST), the local socket).
    type: str
    aliases: [host]
    version_added: 0.2.0
  port:
    description: Port of the source (C(port)).
    type: int
    aliases: [login_port]
    version_added: 0.2.0
  login_user:
    description:
      - Role to connect as (C(user)).
      - When neither this nor O(source_server) names one, libpq uses the OS user the module
        runs as (C(become_user)), not C(postgres) as community.postgresql does.
    type: str
    aliases: [login]
    version_added: 0.2.0
  login_password:
    description:
      - Password of O(login_user) (C(password)). Taken as it is (quotes, backslashes,
        spaces), quoted for libpq by the module, and kept out of results and logs.
    type: str
    version_added: 0.2.0
  login_db:
    description: Database to connect to (C(dbname)); any database of the source will do.
    type: str
    aliases: [db]
    version_added: 0.2.0
  login_unix_socket:
    description:
      - Directory of the Unix domain socket of a source on this host. Used as C(host) when
        O(login_host) is not given or is C(localhost), as in community.postgresql.
    type: str
    aliases: [unix_socket]
    version_added: 0.2.0
  ssl_mode:
    description:
      - libpq C(sslmode). See O(source_server) on verifying the server's certificate.
    type: str
    choices: [allow, disable, prefer, require, verify-ca, verify-full]
    version_added: 0.2.0
  ca_cert:
    description: File of the certificate authorities that sign the source's certificate
      (C(sslrootcert)), on the managed node.
    type: str
    aliases: [ssl_rootcert]
    version_added: 0.2.0
  ssl_cert:
    description: Client certificate file (C(sslcert)), on the managed node.
    type: str
    version_added: 0.2.0
  ssl_key:
    description: Secret key of the client certificate (C(sslkey)), on the managed node.
    type: str
    version_added: 0.2.0
  connect_params:
    description:
      - Any other libpq parameters (C(application_name), C(target_session_attrs), ...);
        they take precedence over every other option and O(source_server).
      - A C(password) among them is kept out of results and logs too.
    type: dict
    version_added: 0.2.0
"""

    # The target's own server (pgops.rewind.pg_rewind_info's target_server): the same
    # options, prefixed, so that they never clash with the source's.
    TARGET = r"""
options:
  target_login_host:
    description: Host of the target's own server, as O(login_host) is the source's.
    type: str
    aliases: [target_host]
    version_added: 0.2.0
  target_port:
    description: Its port (O(port)).
    type: int
    aliases: [target_login_port]
    version_added: 0.2.0
  target_login_user:
    description: Role to connect to it as (O(login_user)).
    type: str
    aliases: [target_login]
    version_added: 0.2.0
  target_login_password:
    description: Password of O(target_login_user) (O(login_password)); kept out of results and logs.
    type: str
    version_added: 0.2.0
  target_login_db:
    description: Database to connect to (O(login_db)).
    type: str
    aliases: [target_db]
    version_added: 0.2.0
  target_login_unix_socket:
    description: Directory of its Unix domain socket (O(login_unix_socket)).
    type: str
    aliases: [target_unix_socket]
    version_added: 0.2.0
  target_ssl_mode:
    description: libpq C(sslmode) (O(ssl_mode)).
    type: str
    choices: [allow, disable, prefer, require, verify-ca, verify-full]
    version_added: 0.2.0
  target_ca_cert:
    description: Certificate authorities file (O(ca_cert)).
    type: str
    aliases: [target_ssl_rootcert]
    version_added: 0.2.0
  target_ssl_cert:
    description: Client certificate file (O(ssl_cert)).
    type: str
    version_added: 0.2.0
  target_ssl_key:
    description: Secret key of the client certificate (O(ssl_key)).
    type: str
    version_added: 0.2.0
  target_connect_params:
    description: Any other libpq parameters (O(connect_params)), taking precedence.
    type: dict
    version_added: 0.2.0
"""
