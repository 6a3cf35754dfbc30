"""TLS for the test bed: a throw-away certificate authority made with openssl, server
and client certificates it signs, and a cluster that accepts only TLS connections."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .cluster import Cluster
from .env import pg_os_ids


@dataclass
class Certificate:
    cert: Path
    key: Path


def _openssl(*args, cwd: Path) -> None:
    subprocess.run(["openssl", *map(str, args)], cwd=str(cwd), check=True,
                   capture_output=True, text=True, timeout=60)


def _own(*paths: Path) -> None:
    """The PostgreSQL OS user owns them; keys 0600, as libpq and the server demand."""
    uid, gid = pg_os_ids()
    for path in paths:
        if os.geteuid() == 0:
            os.chown(path, uid, gid)
        os.chmod(path, 0o600 if path.suffix == ".key" else 0o644)


def make_ca(directory: Path, name: str) -> Certificate:
    directory.mkdir(parents=True, exist_ok=True)
    ca = Certificate(directory / f"{name}.crt", directory / f"{name}.key")
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", ca.key, "-out", ca.cert, "-days", "2", "-subj", f"/CN={name}",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=directory)
    _own(ca.cert, ca.key)
    return ca


def issue(ca: Certificate, name: str, common_name: str, alt_names: str = "") -> Certificate:
    """A certificate signed by `ca` (alt_names: e.g. "IP:127.0.0.1,DNS:localhost")."""
    directory = ca.cert.parent
    out = Certificate(directory / f"{name}.crt", directory / f"{name}.key")
    csr = directory / f"{name}.csr"
    ext = directory / f"{name}.ext"
    ext.write_text(f"subjectAltName={alt_names}\n" if alt_names else "basicConstraints=CA:FALSE\n")
    _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", out.key, "-out", csr, "-subj", f"/CN={common_name}",
             cwd=directory)
    _openssl("x509", "-req", "-in", csr, "-CA", ca.cert, "-CAkey", ca.key, "-CAcreateserial",
             "-out", out.cert, "-days", "2", "-extfile", ext, cwd=directory)
    _own(out.cert, out.key)
    return out


@dataclass
class TlsSetup:
    ca: Certificate          # signed the server's and the client's certificates
    impostor_ca: Certificate  # a CA that signed nothing the server shows
    server: Certificate
    client: Certificate      # CN = CLIENT_USER
    user: str


CLIENT_USER = "rewinder"

_HBA = """\
local all all trust
local replication all trust
hostssl all {superuser} 127.0.0.1/32 trust
hostssl replication {superuser} 127.0.0.1/32 trust
hostssl all {user} 127.0.0.1/32 cert
hostssl replication {user} 127.0.0.1/32 cert
hostnossl all all 0.0.0.0/0 reject
hostnossl replication all 0.0.0.0/0 reject
"""


def tls_only(node: Cluster, home: Path) -> TlsSetup:
    """Make `node` accept only TLS connections from 127.0.0.1 (plain ones are rejected);
    role CLIENT_USER (superuser, replication) logs in with its client certificate only.
    The test bed's own connections (sslmode prefer, trusted over TLS) keep working."""
    directory = home / "tls"
    ca = make_ca(directory, "ca")
    setup = TlsSetup(ca, make_ca(directory, "impostor-ca"),
                     issue(ca, "server", "127.0.0.1", "IP:127.0.0.1,DNS:localhost"),
                     issue(ca, "client", CLIENT_USER), CLIENT_USER)
    for path in (home, directory):
        os.chmod(path, 0o755)
    node.sql(f"CREATE ROLE {CLIENT_USER} LOGIN SUPERUSER REPLICATION")
    node.write_node_settings({"ssl": "on", "ssl_cert_file": f"'{setup.server.cert}'",
                              "ssl_key_file": f"'{setup.server.key}'",
                              "ssl_ca_file": f"'{ca.cert}'"})
    (node.datadir / "pg_hba.conf").write_text(_HBA.format(superuser="postgres", user=CLIENT_USER))
    node.restart()
    return setup


def conninfo(node: Cluster, tls: TlsSetup, ca: Certificate | None = None, **overrides) -> str:
    """A verify-full connection string of the TLS-only `node`, as CLIENT_USER."""
    params = {"host": "127.0.0.1", "port": node.port, "user": tls.user, "dbname": "postgres",
              "sslmode": "verify-full", "sslrootcert": (ca or tls.ca).cert,
              "sslcert": tls.client.cert, "sslkey": tls.client.key}
    params.update(overrides)
    return " ".join(f"{k}={v}" for k, v in params.items() if v is not None)


def walsender_tls(node: Cluster) -> list:
    """(user, ssl, version) of every walsender on `node`."""
    return node.sql("SELECT r.usename, s.ssl, s.version FROM pg_stat_replication r "
                    "JOIN pg_stat_ssl s USING (pid)")
