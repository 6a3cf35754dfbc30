"""Configuration outside the data directory (issue 19, item 5), in Debian's layout
(postgresql-common: postgresql.conf, pg_hba.conf and pg_ident.conf in
/etc/postgresql/15/<cluster>/, data in /var/lib/postgresql/15/<cluster>), without
pg_rewind_config_file. Before, the role stopped the running old primary and then failed
with settings_unreadable. Now the running node tells where its configuration is (SHOW
config_file, hba_file, ident_file); for a stopped one the Debian cluster whose
data_directory it is is found; otherwise the preflight refuses, before anything is
stopped, naming pg_rewind_config_file.

Self-contained: its own clusters (names dl<pid>a/b), dropped with pg_dropcluster however
the test ends."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from support.ansible import run_module, run_playbook
from support.cluster import Cluster, free_port, run_pg
from support.compare import compare
from support.digest import datadir_digest, differences
from support.env import REPO
from support.scenarios import diverge_new_primary, diverge_old_primary, failover, seed

MAJOR = 15          # Debian's own PostgreSQL on this host
BINDIR = Path("/usr/lib/postgresql/%d/bin" % MAJOR)
PLAYBOOK = REPO / "tests" / "role" / "rejoin.yml"
SETTINGS = "wal_log_hints = on\nlisten_addresses = '127.0.0.1'\nmax_wal_senders = 5\n"


def _root(cmd):
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, "%s: %s%s" % (" ".join(map(str, cmd)), proc.stdout, proc.stderr)


class DebianNode(Cluster):
    """A postgresql-common cluster, run by pg_ctlcluster; SQL through Cluster."""

    def __init__(self, name: str):
        super().__init__(name, MAJOR, Path("/var/lib/postgresql") / str(MAJOR))
        self.datadir = self.home
        self.bindir = BINDIR
        self.confdir = Path("/etc/postgresql") / str(MAJOR) / name
        self.logfile = Path("/var/log/postgresql") / ("postgresql-%d-%s.log" % (MAJOR, name))
        self.port = free_port()

    def create(self) -> "DebianNode":
        _root(["pg_createcluster", MAJOR, self.name, "-p", self.port, "--start-conf", "manual"])
        (self.confdir / "conf.d" / "pgops-test.conf").write_text(SETTINGS)
        hba = self.confdir / "pg_hba.conf"
        hba.write_text("host all postgres 127.0.0.1/32 trust\n"
                       "host replication postgres 127.0.0.1/32 trust\n" + hba.read_text())
        return self

    def start(self, check: bool = True):
        _root(["pg_ctlcluster", MAJOR, self.name, "start"])
        self.running = True

    def stop(self, mode: str = "fast") -> None:
        if self.is_alive():
            _root(["pg_ctlcluster", MAJOR, self.name, "stop", "-m", mode])
        self.running = False

    def standby_of(self, primary: "DebianNode") -> None:
        _root(["rm", "-rf", self.datadir])
        run_pg([BINDIR / "pg_basebackup", "-h", "127.0.0.1", "-p", primary.port, "-U",
                "postgres", "-D", self.datadir, "-X", "stream", "-R", "--checkpoint=fast"])

    def drop(self) -> None:
        subprocess.run(["pg_dropcluster", "--stop", str(MAJOR), self.name],
                       capture_output=True, check=False)
        shutil.rmtree(self.confdir, ignore_errors=True)
        for leftover in (self.datadir.parent / ("pg_ctl-%s.log" % self.name),
                         Path("/tmp") / ("pgops_rewind-progress-var_lib_postgresql_%d_%s.json"
                                         % (MAJOR, self.name))):
            if leftover.exists():
                leftover.unlink()


@pytest.fixture
def debian_failover():
    """A diverged failover of two Debian clusters: (old primary, still running; new one)."""
    tag = "dl%d" % os.getpid()
    old, new = DebianNode(tag + "a"), DebianNode(tag + "b")
    try:
        old.create().start()
        new.create()
        new.standby_of(old)
        new.start()
        old.wait_until(lambda: old.scalar("SELECT count(*) FROM pg_stat_replication "
                                          "WHERE state = 'streaming'") == 1, what="streaming")
        seed(old)
        old.wait_for_replay(new)
        new.promote()
        new.checkpoint()
        diverge_old_primary(old)
        diverge_new_primary(new)
        yield old, new
    finally:
        for node in (old, new):
            node.drop()


def _role_vars(old, new, **extra):
    role_vars = {
        "pg_rewind_pgdata": str(old.datadir), "pg_rewind_bindir": str(BINDIR),
        "pg_rewind_local_host": "127.0.0.1", "pg_rewind_port": old.port,
        "pg_rewind_source_host": "127.0.0.1", "pg_rewind_source_port": new.port,
        "pg_rewind_sync": False, "pg_rewind_wait_timeout": 120,
        "pg_rewind_become_method": "su"}
    role_vars.update(extra)
    return role_vars


@pytest.mark.skipif(os.geteuid() != 0, reason="postgresql-common clusters are made as root")
@pytest.mark.parametrize("state", ["running", "stopped"])
def test_debian_layout_without_config_file(collection, debian_failover, state):
    old, new = debian_failover
    assert not (old.datadir / "postgresql.conf").exists()
    if state == "stopped":
        old.stop()
    result = run_playbook(str(PLAYBOOK), _role_vars(old, new))
    assert result["rc"] == 0, result["stdout"][-6000:] + result["stderr"][-3000:]
    assert "rewound: fork at" in result["stdout"]
    old.running = True
    assert old.in_recovery()
    assert new.scalar("SELECT state FROM pg_stat_replication") == "streaming"
    # it runs with its own configuration, from /etc
    assert old.scalar("SHOW config_file") == str(old.confdir / "postgresql.conf")
    assert old.scalar("SHOW hba_file") == str(old.confdir / "pg_hba.conf")
    new.sql("CREATE TABLE after_rejoin AS SELECT 1 AS x")
    new.wait_for_replay(old)
    same = compare(new, old, catalogs=True)
    assert same.equal, str(same)


@pytest.mark.skipif(os.geteuid() != 0, reason="postgresql-common clusters are made as root")
def test_info_reports_where_the_configuration_is(collection, debian_failover):
    old, new = debian_failover
    running = run_module("pg_rewind_info", {
        "target_pgdata": str(old.datadir), "source_server": new.conninfo(),
        "target_server": old.conninfo()})
    assert not running["failed"], running.get("msg")
    assert running["server"]["config_file"] == str(old.confdir / "postgresql.conf")
    assert running["server"]["ident_file"] == str(old.confdir / "pg_ident.conf")
    assert (running["config"]["found_by"], running["config"]["outside_data_directory"]) == \
        ("server", True)
    old.stop()
    stopped = run_module("pg_rewind_info", {
        "target_pgdata": str(old.datadir), "source_server": new.conninfo()})
    assert stopped["config"] == {
        "config_file": str(old.confdir / "postgresql.conf"),
        "hba_file": str(old.confdir / "pg_hba.conf"),
        "ident_file": str(old.confdir / "pg_ident.conf"),
        "found_by": "debian_layout", "outside_data_directory": True}
    check = [c for c in stopped["preflight"] if c["check"] == "config_file"]
    assert check and check[0]["ok"], stopped["preflight"]


def test_configuration_nowhere_to_be_found_is_refused_before_the_stop(bed, collection):
    """The stopped node's postgresql.conf was moved out of its data directory, and no
    Debian cluster names it: the preflight fails naming pg_rewind_config_file, and the
    data directory is unchanged."""
    fo = failover(bed, MAJOR)
    old = fo.old_primary
    elsewhere = bed.home / "etc-old"
    elsewhere.mkdir()
    shutil.move(str(old.datadir / "postgresql.conf"), str(elsewhere / "postgresql.conf"))
    before = datadir_digest(old.datadir)
    role_vars = _role_vars(old, fo.new_primary, pg_rewind_bindir=str(old.bindir))
    role_vars["pg_rewind_become_method"] = "su" if os.geteuid() == 0 else "sudo"
    result = run_playbook(str(PLAYBOOK), role_vars)
    assert result["rc"] != 0
    out = " ".join(result["stdout"].split())
    assert "Preflight failed, nothing was stopped or changed" in out, out[-4000:]
    assert "config_file: no postgresql.conf in" in out and "pg_rewind_config_file" in out
    assert "Stop the node" not in out and "Rewind the node" not in out
    assert differences(before, datadir_digest(old.datadir)) == []
