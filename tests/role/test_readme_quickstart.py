"""The README's quick start, followed as a DBA follows it, on this Debian 12 host with
Debian's PostgreSQL 15 in the Debian layout (pg_createcluster: configuration in
/etc/postgresql/15/<cluster>/, data in /var/lib/postgresql/15/<cluster>).

Every file and command comes from README.md's code blocks marked
`<!-- readme-test: NAME -->`: the collection built from a checkout and installed from
its tarball, the host packages, the settings, the roles' SQL, the pg_hba.conf lines,
the inventory, the variables, the vaulted passwords, the dry run (it must succeed and
change nothing), the run, and the verification (fleet summary, pg_stat_wal_receiver,
pg_stat_replication). Root runs ansible-playbook, which becomes `postgres` (sudo, the
default), and the modules run with the system Python and Debian's psycopg2.

What differs on a test host, and only that, is substituted:
- the two hosts are two clusters on this host: `10.0.0.11`/`10.0.0.12` become
  `127.0.0.1` (in the inventory, with `ansible_connection=local` instead of SSH, and in
  pg_hba.conf), `listen_addresses = '*'` becomes `'127.0.0.1'`, each `-p 5432` and
  `pg_port=5432` the cluster's own free port, and the cluster name `main` this test's
  cluster names;
- `pg_rewind_service` is left out, as the README says for a node systemd does not
  run (no systemd here): the role runs pg_ctl with `pg_rewind_config_file`;
- `git clone` is a copy of this working tree; `~` is a private home directory; the
  ansible-core on PATH is the suite's (the README's virtualenv step is not run);
- the host packages are installed with the README's command only when one is missing.
The test bed itself (not the README) lets `postgres` in over 127.0.0.1 without a
password, to build, fail over and compare the clusters, and removes Debian's default
`host` lines for 127.0.0.1, which would let the README's roles in without the README's
lines (on real hosts the nodes connect over the network).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from support.cluster import Cluster, run_pg
from support.compare import compare
from support.digest import datadir_digest, differences
from support.env import OUTPUT, REPO, VENV_PYTHON
from support.scenarios import diverge_new_primary, diverge_old_primary, seed

MAJOR = 15
VAULT_PASSWORD = "vault password of the quick start"


def readme_blocks() -> dict:
    """{name: text} of README.md's code blocks marked <!-- readme-test: name -->."""
    text = (REPO / "README.md").read_text()
    return {m.group(1): m.group(2) for m in re.finditer(
        r"^<!-- readme-test: ([\w-]+) -->\n```[^\n]*\n(.*?)^```$", text, re.S | re.M)}


def _file_path(block: str) -> str:
    """A file block names its path in its first line: `# /etc/...` or `# ~/...`."""
    first = block.splitlines()[0]
    assert first.startswith("# "), "the block does not name its file: %r" % first
    return first[2:].strip()


class DebianCluster(Cluster):
    """A cluster of Debian's postgresql-common (pg_createcluster), run by pg_ctlcluster."""

    def __init__(self, name: str):
        super().__init__(name, MAJOR, Path("/var/lib/postgresql") / str(MAJOR))
        self.datadir = self.home                       # /var/lib/postgresql/15/<name>
        self.confdir = Path("/etc/postgresql") / str(MAJOR) / name
        self.logfile = Path("/var/log/postgresql") / ("postgresql-%d-%s.log" % (MAJOR, name))

    def create(self, settings: str) -> "DebianCluster":
        _root(["pg_createcluster", str(MAJOR), self.name, "-p", str(self.port),
               "--start-conf", "manual"])
        (self.confdir / "conf.d" / "pgops-rewind.conf").write_text(settings)
        hba = self.confdir / "pg_hba.conf"
        lines = ["# test bed: its own superuser connections",
                 "host all postgres 127.0.0.1/32 trust"]
        for line in hba.read_text().splitlines():
            fields = line.split()
            lines.append("# test bed: " + line if fields[:1] == ["host"] and
                         fields[3] in ("127.0.0.1/32", "::1/128") else line)
        hba.write_text("\n".join(lines) + "\n")
        return self

    def start(self, check: bool = True):
        _root(["pg_ctlcluster", str(MAJOR), self.name, "start"])
        self.running = True

    def stop(self, mode: str = "fast") -> None:
        _root(["pg_ctlcluster", str(MAJOR), self.name, "stop", "-m", mode])
        self.running = False

    def basebackup_from(self, primary: "DebianCluster") -> None:
        """Replace the data directory with pg_basebackup's copy of `primary` (-R)."""
        _root(["rm", "-rf", str(self.datadir)])
        run_pg(["/usr/lib/postgresql/%d/bin/pg_basebackup" % MAJOR, "-h", "/var/run/postgresql",
                "-p", primary.port, "-U", "postgres", "-D", self.datadir, "-X", "stream", "-R",
                "--checkpoint=fast"])

    def drop(self) -> None:
        subprocess.run(["pg_dropcluster", "--stop", str(MAJOR), self.name],
                       capture_output=True, check=False)
        shutil.rmtree(self.confdir, ignore_errors=True)     # our conf.d file stays behind
        for leftover in (self.datadir.parent / ("pg_ctl-%s.log" % self.name),
                         Path("/tmp") / ("pgops_rewind-progress-var_lib_postgresql_%d_%s.json"
                                         % (MAJOR, self.name))):
            if leftover.exists():
                leftover.unlink()


def _root(cmd) -> str:
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, "%s: %s%s" % (" ".join(map(str, cmd)), proc.stdout, proc.stderr)
    return proc.stdout


class Shell:
    """The DBA's shell on the controller: a private home, the suite's ansible-core."""

    def __init__(self, home: Path):
        self.home = home
        self.env = {"HOME": str(home), "LANG": "C.UTF-8", "USER": "root", "LOGNAME": "root",
                    "PATH": "%s:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
                            % VENV_PYTHON.parent}

    def run(self, script: str, cwd: Path = None, stdin: str = "", timeout: float = 1200):
        proc = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=str(cwd or self.home),
                              env=self.env, input=stdin, capture_output=True, text=True,
                              timeout=timeout, check=False)
        return proc.returncode, proc.stdout + proc.stderr

    def ok(self, script: str, **kwargs) -> str:
        rc, out = self.run(script, **kwargs)
        assert rc == 0, "README step failed (rc %d):\n%s\n--- output ---\n%s" % (
            rc, script, out[-8000:])
        return out

    def write(self, path: str, text: str) -> Path:
        target = Path(path.replace("~", str(self.home), 1))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        return target


def _on_host(block: str, port: int) -> str:
    """A command for one database host: its port."""
    assert "-p 5432" in block, block
    return block.replace("-p 5432", "-p %d" % port)


def _host_packages(shell: Shell, block: str) -> None:
    """The README's package command, run when one of its packages is missing."""
    names = [word for word in block.split("install", 1)[1].split() if not word.startswith("-")]
    assert {"python3", "python3-psycopg2", "acl"} <= set(names), names
    # Both parametrisations may reach this at once on two workers, and a fresh host may be
    # running its own apt-get (unattended upgrades): one at a time, and wait out a held lock.
    with open(OUTPUT / "readme-apt.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        missing = [name for name in names if subprocess.run(
            ["dpkg-query", "-W", "-f", "${Status}", name], capture_output=True, text=True,
            check=False).stdout != "install ok installed"]
        if not missing:
            return
        deadline = time.monotonic() + 900
        while True:
            rc, out = shell.run(block, timeout=600)
            if rc == 0 or "Could not get lock" not in out or time.monotonic() > deadline:
                break
            time.sleep(5)
        assert rc == 0, "README step failed (rc %d):\n%s\n--- output ---\n%s" % (
            rc, block, out[-8000:])


def _copy_of_checkout(dest: Path) -> None:
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                           cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    for name in files:
        source = REPO / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)


@pytest.fixture
def debian_clusters(request):
    """Two clusters of Debian's layout; dropped (pg_dropcluster) however the test ends."""
    tag = "rq%d" % os.getpid()
    nodes = [DebianCluster(tag + "a"), DebianCluster(tag + "b")]
    try:
        yield nodes
    finally:
        failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
        for node in nodes:
            if failed:
                dest = OUTPUT / "readme-quickstart"
                dest.mkdir(parents=True, exist_ok=True)
                for log in (node.logfile, node.datadir.parent / ("pg_ctl-%s.log" % node.name)):
                    if log.exists():
                        shutil.copy(log, dest / log.name)
            node.drop()


@pytest.mark.skipif(os.geteuid() != 0, reason="the quick start runs as root on the hosts")
@pytest.mark.parametrize("old_primary", ["stopped", "crashed"])
def test_readme_quick_start_on_debian(debian_clusters, old_primary):
    """The old primary was stopped (fenced by `systemctl stop`, pg_ctl -m fast), or it
    crashed (-m immediate: the run finishes its crash recovery first)."""
    blocks = readme_blocks()
    old, new = debian_clusters                          # db1 and db2 of the README
    home = Path(tempfile.mkdtemp(prefix="pgops-readme-"))
    try:
        _follow(blocks, Shell(home), old, new, "immediate" if old_primary == "crashed" else "fast")
    finally:
        shutil.rmtree(home, ignore_errors=True)


def _follow(blocks: dict, shell: Shell, old: DebianCluster, new: DebianCluster,
            stop_mode: str) -> None:
    # --- before the failover: a primary and its streaming standby, with the settings
    settings = blocks["settings-debian"]
    assert _file_path(settings) == "/etc/postgresql/15/main/conf.d/pgops-rewind.conf"
    assert "listen_addresses = '*'" in settings
    settings = settings.replace("listen_addresses = '*'", "listen_addresses = '127.0.0.1'")
    old.create(settings).start()
    new.create(settings)
    new.basebackup_from(old)
    new.start()
    old.wait_until(lambda: old.scalar("SELECT count(*) FROM pg_stat_replication "
                                      "WHERE state = 'streaming'") == 1, what="standby streaming")
    assert old.scalar("SHOW wal_log_hints") == "on"
    seed(old)
    old.wait_for_replay(new)
    # --- the failover: db2 promoted, both write, db1 goes down
    new.promote()
    new.checkpoint()
    diverge_old_primary(old)
    diverge_new_primary(new)
    old.stop(mode=stop_mode)

    # --- 1. install the collection (built from a checkout)
    _host_packages(shell, blocks["host-packages-debian"])
    install = blocks["install-from-checkout"].splitlines()
    assert install[0].startswith("git clone "), install[0]
    _copy_of_checkout(shell.home / "rewind")
    shell.ok("\n".join(install[1:]))
    assert (shell.home / ".ansible/collections/ansible_collections/pgops/rewind/MANIFEST.json").exists()

    # --- 2. the roles and pg_hba.conf lines, on the new primary and on both nodes
    work = shell.home / "db2"
    work.mkdir()
    (work / "rewind-roles.sql").write_text(blocks["roles-sql"])
    shell.ok(_on_host(blocks["roles-sql-run"], new.port), cwd=work)
    hba = blocks["hba"].replace("10.0.0.11/32", "127.0.0.1/32")
    hba = hba.replace("10.0.0.12/32", "127.0.0.1/32")
    for node in (old, new):
        with open(node.confdir / "pg_hba.conf", "a") as conf:
            conf.write(hba)
    reload_out = shell.ok(_on_host(blocks["hba-reload"], new.port))
    assert "(0 rows)" in reload_out, reload_out

    # --- 3. the inventory, the variables, the vaulted passwords
    shell.ok(blocks["rejoin-dir"])
    ports = {"db1": old.port, "db2": new.port}
    inventory = blocks["inventory"]
    for host, address in (("db1", "10.0.0.11"), ("db2", "10.0.0.12")):
        line = "%s ansible_host=%s pg_port=5432" % (host, address)
        assert line in inventory, inventory
        inventory = inventory.replace(line, "%s ansible_host=127.0.0.1 ansible_connection=local "
                                            "pg_port=%d" % (host, ports[host]))
    shell.write(_file_path(inventory), inventory)
    role_vars = blocks["vars-debian"]
    assert "pg_rewind_config_file: /etc/postgresql/15/main/postgresql.conf" in role_vars
    role_vars = "".join(line for line in role_vars.splitlines(keepends=True)
                        if not line.startswith("pg_rewind_service:"))
    role_vars = role_vars.replace("/15/main", "/15/" + old.name)
    shell.write(_file_path(role_vars), role_vars)
    secrets = shell.write(_file_path(blocks["vault-file"]), blocks["vault-file"])
    shell.write(_file_path(blocks["ansible-cfg"]), blocks["ansible-cfg"])
    shell.ok(blocks["vault-encrypt"], stdin=VAULT_PASSWORD + "\n")
    assert secrets.read_text().startswith("$ANSIBLE_VAULT;")
    passwords = re.findall(r"PASSWORD '([^']+)'", blocks["roles-sql"])
    assert len(passwords) == 2 and all(p not in secrets.read_text() for p in passwords)

    # --- 5. the dry run: succeeds, stops nothing, changes nothing
    before = (datadir_digest(old.datadir), datadir_digest(old.confdir))
    dry = shell.ok(blocks["dry-run"])
    assert (datadir_digest(old.datadir), datadir_digest(old.confdir)) == before, \
        differences(before[0], datadir_digest(old.datadir))
    assert not old.is_alive()
    assert new.sql("SELECT slot_name FROM pg_replication_slots") == []
    assert "Dry run: 1 of 1 old primaries would be rejoined; db1: would rejoin" in dry, dry[-4000:]
    if stop_mode == "fast":      # what it would copy and discard is known
        assert re.search(r"It would be rewound: the histories forked at \S+ on timeline 1; "
                         r"[1-9]\d* bytes to fetch .*replay would start at [0-9A-F]+/[0-9A-F]+",
                         dry), dry[-4000:]
        assert "The rewind would discard what the old primary did after the fork" in dry
    else:                        # known only after crash recovery, which a dry run cannot run
        assert "a real run first finishes its crash recovery" in dry, dry[-4000:]

    # --- the run, and the verification
    run = shell.ok(blocks["run"])
    assert "1 of 1 old primaries rejoined" in run and "db1: streaming" in run, run[-4000:]
    for password in passwords:
        assert password not in dry + run
    fleet = json.loads(shell.ok(blocks["verify-controller"]))
    node = fleet["nodes"][0]
    assert (node["host"], node["ok"], node["path"], node["streaming"]) == \
        ("db1", True, "rewind", True), node
    assert node["bytes_fetched"] > 0 and node["discarded"]["relations"], node
    receiver = shell.ok(_on_host(blocks["verify-db1"], old.port))
    assert re.search(r"^\s*streaming\s*\|\s*127\.0\.0\.1\s*\|\s*%d\s*$" % new.port, receiver,
                     re.M), receiver
    standbys = shell.ok(_on_host(blocks["verify-db2"], new.port))
    assert re.search(r"^\s*db1\s*\|\s*127\.0\.0\.1\s*\|\s*streaming\s*$", standbys, re.M), standbys

    # the rewound node holds the new primary's data, and a second run changes nothing
    old.running = True
    new.sql("CREATE TABLE after_quick_start AS SELECT 1 AS x")
    new.wait_for_replay(old)
    same = compare(new, old, catalogs=True)
    assert same.equal, str(same)
    again = shell.ok(blocks["run"])
    assert re.search(r"^db1\s+:.*\bchanged=0\b", again, re.M), again[-4000:]
