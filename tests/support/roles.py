"""The rewind role an operator creates on the new primary: a password only it knows
(quotes, backslashes, spaces, as vaults and AWX credentials hold), scram only."""

from __future__ import annotations

from .env import TEST_PASSWORD

HOSTILE_PASSWORD = TEST_PASSWORD + " it's a \\back\\slash = 'x' é"


def password_only_rewind_role(node, password: str = HOSTILE_PASSWORD) -> None:
    """Role `rewind` (LOGIN REPLICATION, the file functions a rewind reads with) that
    reaches `node` over TCP with its scram password only; postgres keeps trust."""
    # (11 stores md5 by default: scram needs the password stored as scram)
    node.sql("SET password_encryption = 'scram-sha-256';"
             "CREATE ROLE rewind LOGIN REPLICATION PASSWORD %s", (password,))
    node.sql("GRANT EXECUTE ON FUNCTION pg_catalog.pg_ls_dir(text, boolean, boolean) TO rewind;"
             "GRANT EXECUTE ON FUNCTION pg_catalog.pg_stat_file(text, boolean) TO rewind;"
             "GRANT EXECUTE ON FUNCTION pg_catalog.pg_read_binary_file(text) TO rewind;"
             "GRANT EXECUTE ON FUNCTION pg_catalog.pg_read_binary_file(text, bigint, bigint, "
             "boolean) TO rewind")
    (node.datadir / "pg_hba.conf").write_text(
        "local all all trust\n"
        "host all postgres 127.0.0.1/32 trust\n"
        "host all rewind 127.0.0.1/32 scram-sha-256\n"
        "host replication rewind 127.0.0.1/32 scram-sha-256\n")
    node.sql("SELECT pg_reload_conf()")
