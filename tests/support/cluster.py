"""Real PostgreSQL servers of any major 11-18 for the tests.

A `Cluster` is one data directory plus the server running on it, bound to
127.0.0.1 on a free port, owned and run by the PostgreSQL OS user. Everything
is done the way an operator would do it, with the binaries of that major:
initdb, pg_ctl, an online (non-exclusive) base backup through SQL plus a file copy
(the portable builds have no pg_basebackup), promotion.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import psycopg2

from .env import TestBedError, bindir, pg_os_ids, run_as_kwargs

SUPERUSER = "postgres"
NODE_BLOCK_BEGIN = "# --- pgbed node settings (begin) ---"
NODE_BLOCK_END = "# --- pgbed node settings (end) ---"

# Paths an online copy leaves out, as pg_basebackup does (contents of these dirs).
_COPY_SKIP_DIR_CONTENTS = {
    "pg_wal", "pg_replslot", "pg_stat_tmp", "pg_dynshmem", "pg_notify",
    "pg_serial", "pg_snapshots", "pg_subtrans",
}
_COPY_SKIP_FILES = {"postmaster.pid", "postmaster.opts", "backup_label", "tablespace_map",
                    "standby.signal", "recovery.signal", "recovery.conf"}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_pg(cmd: list, cwd: Path | None = None, check: bool = True, timeout: float = 300,
           input: str | None = None) -> subprocess.CompletedProcess:
    """Run a PostgreSQL program as the PostgreSQL OS user."""
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "TZ": "UTC"}
    proc = subprocess.run([str(c) for c in cmd], cwd=str(cwd) if cwd else "/", env=env,
                          capture_output=True, text=True, timeout=timeout, input=input,
                          start_new_session=True,   # pg_ctl 11 does not detach the server
                          **run_as_kwargs(), check=False)
    if check and proc.returncode != 0:
        raise TestBedError(f"{' '.join(map(str, cmd))} failed ({proc.returncode}):\n"
                           f"{proc.stdout}\n{proc.stderr}")
    return proc


def chown_tree(path: Path) -> None:
    uid, gid = pg_os_ids()
    if os.geteuid() != 0:
        return
    for root, dirs, files in os.walk(path):
        os.lchown(root, uid, gid)
        for name in dirs + files:
            os.lchown(os.path.join(root, name), uid, gid)


class Cluster:
    """One PostgreSQL data directory and its server."""

    def __init__(self, name: str, major: int, home: Path):
        self.name = name
        self.major = major
        self.bindir = bindir(major)
        self.home = home / name              # everything of this node lives here
        self.datadir = self.home / "data"
        self.sockdir = self.home / "sock"
        self.logfile = self.home / "server.log"
        self.tablespace_root = self.home / "tablespaces"
        self.port = free_port()
        self.running = False
        self.settings: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"<Cluster {self.name} PG{self.major} port {self.port}>"

    # --- creation -----------------------------------------------------------
    def _make_home(self) -> None:
        for path in (self.home, self.sockdir, self.tablespace_root):
            path.mkdir(parents=True, exist_ok=True)
        chown_tree(self.home)

    def init(self, checksums: bool = True, wal_log_hints: bool = False,
             wal_segsize_mb: int | None = None, group_access: bool = False,
             fsync: bool = False, settings: dict | None = None) -> "Cluster":
        """initdb + the settings a replicated test cluster needs."""
        self._make_home()
        cmd = [self.bindir / "initdb", "-D", self.datadir, "-U", SUPERUSER, "-A", "trust",
               "-E", "UTF8", "--locale=C", "--no-sync"]
        if checksums:
            cmd.append("--data-checksums")
        elif self.major >= 18:
            cmd.append("--no-data-checksums")  # 18 turns them on by default
        if wal_segsize_mb:
            cmd.append(f"--wal-segsize={wal_segsize_mb}")
        if group_access:
            cmd.append("--allow-group-access")
        run_pg(cmd, cwd=self.home)
        base = {
            "listen_addresses": "'127.0.0.1'",
            "wal_level": "replica",
            "max_wal_senders": "10",
            "max_replication_slots": "10",
            "hot_standby": "on",
            "wal_log_hints": "on" if wal_log_hints else "off",
            "fsync": "on" if fsync else "off",
            "max_connections": "40",
            "shared_buffers": "32MB",
            "log_line_prefix": "'%m [%p] '",
            "log_min_messages": "info",
            # The oracle (data equality after replay) must see a block the rewind missed:
            # background vacuums would write full-page images of pages on the new primary
            # that replay then uses to repair them. Off, so nothing writes but the test.
            "autovacuum": "off",
        }
        if self.major >= 13:
            base["wal_keep_size"] = "'1GB'"
        else:
            base["wal_keep_segments"] = "64"
        # In-place tablespaces (pg_tblspc/<oid> as a directory) let two nodes on one
        # host share a tablespace name; added in 15, back-patched to 11.15/12.10/13.6/14.2.
        base["allow_in_place_tablespaces"] = "on"
        base.update(settings or {})
        with open(self.datadir / "postgresql.conf", "a") as conf:
            conf.write("\n# --- pgbed cluster settings ---\n")
            conf.writelines(f"{key} = {value}\n" for key, value in base.items())
        self.write_node_settings()
        return self

    def write_node_settings(self, extra: dict | None = None) -> None:
        """The settings that differ between nodes (port, socket dir) in a block of
        postgresql.conf, so a copied data directory gets its own."""
        self.settings.update(extra or {})
        conf = self.datadir / "postgresql.conf"
        text = conf.read_text()
        text = re.sub(rf"\n{re.escape(NODE_BLOCK_BEGIN)}.*?{re.escape(NODE_BLOCK_END)}\n", "\n",
                      text, flags=re.S)
        lines = {"port": str(self.port), "unix_socket_directories": f"'{self.sockdir}'",
                 "cluster_name": f"'{self.name}'", **self.settings}
        block = "\n".join(f"{k} = {v}" for k, v in lines.items())
        conf.write_text(f"{text.rstrip()}\n{NODE_BLOCK_BEGIN}\n{block}\n{NODE_BLOCK_END}\n")

    # --- server control -------------------------------------------------------
    def pg_ctl(self, *args, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
        return run_pg([self.bindir / "pg_ctl", "-D", self.datadir, *args],
                      cwd=self.home, check=check, timeout=timeout)

    def start(self, check: bool = True, wait_s: int = 180) -> subprocess.CompletedProcess:
        for _attempt in range(3):
            proc = self.pg_ctl("-l", self.logfile, "-w", "-t", str(wait_s), "start", check=False)
            if proc.returncode == 0:
                self.running = True
                return proc
            if "could not bind" in self.log_tail() or "already in use" in self.log_tail():
                self.port = free_port()   # lost a race for the port: take another
                self.write_node_settings()
                continue
            break
        if check:
            raise TestBedError(f"{self} did not start:\n{proc.stdout}{proc.stderr}\n"
                               f"--- log tail ---\n{self.log_tail()}")
        return proc

    def stop(self, mode: str = "fast") -> None:
        if self.is_alive():
            self.pg_ctl("-m", mode, "-w", "-t", "180", "stop")
        self.running = False

    def kill(self) -> None:
        """Last-resort stop used by teardown: immediate, and SIGKILL if that fails."""
        if not self.is_alive():
            self.running = False
            return
        proc = self.pg_ctl("-m", "immediate", "-w", "-t", "60", "stop", check=False)
        if proc.returncode != 0:
            pid = self.postmaster_pid()
            if pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, 9)
        self.running = False

    def postmaster_pid(self) -> int | None:
        try:
            return int((self.datadir / "postmaster.pid").read_text().split("\n", 1)[0])
        except (FileNotFoundError, ValueError):
            return None

    def is_alive(self) -> bool:
        pid = self.postmaster_pid()
        if not pid:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True

    def restart(self) -> None:
        self.stop()
        self.start()

    def promote(self) -> None:
        self.pg_ctl("-w", "-t", "180", "promote")
        self.wait_until(lambda: not self.in_recovery(), what="promotion finished")

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    # --- SQL ----------------------------------------------------------------
    def connect(self, dbname: str = "postgres", user: str = SUPERUSER, **kwargs):
        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user=user, dbname=dbname,
                                connect_timeout=10, **kwargs)
        conn.autocommit = True
        return conn

    def sql(self, query: str, params=None, dbname: str = "postgres") -> list[tuple]:
        """Run one statement (autocommit) and return its rows ([] when it returns none)."""
        with contextlib.closing(self.connect(dbname)) as conn, conn.cursor() as cur:
            cur.execute(query, params)
            return cur.fetchall() if cur.description else []

    def scalar(self, query: str, params=None, dbname: str = "postgres"):
        rows = self.sql(query, params, dbname)
        return rows[0][0] if rows else None

    def in_recovery(self) -> bool:
        return self.scalar("SELECT pg_is_in_recovery()")

    def current_lsn(self) -> str:
        fn = "pg_last_wal_replay_lsn()" if self.in_recovery() else "pg_current_wal_lsn()"
        return self.scalar(f"SELECT {fn}::text")

    def wal_timeline(self) -> int:
        """Timeline of the WAL the server writes now (not the possibly stale pg_control one)."""
        if self.in_recovery():
            return self.scalar("SELECT received_tli FROM pg_stat_wal_receiver") or 0
        return int(self.scalar("SELECT pg_walfile_name(pg_current_wal_lsn())")[:8], 16)

    def checkpoint(self) -> None:
        self.sql("CHECKPOINT")

    def wait_until(self, predicate, timeout: float = 120, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if predicate():
                    return
            except psycopg2.OperationalError:
                pass
            if time.monotonic() > deadline:
                raise TestBedError(f"{self}: timed out waiting for {what}\n{self.log_tail()}")
            time.sleep(0.1)

    # --- replication ----------------------------------------------------------
    def conninfo(self, user: str = SUPERUSER, application_name: str | None = None) -> str:
        parts = [f"host=127.0.0.1 port={self.port} user={user}"]
        if application_name:
            parts.append(f"application_name={application_name}")
        return " ".join(parts)

    def create_standby(self, name: str, start: bool = True) -> "Cluster":
        """A streaming standby built from an online, non-exclusive base backup."""
        standby = Cluster(name, self.major, self.home.parent)
        standby._make_home()
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                if self.major >= 15:
                    cur.execute("SELECT pg_backup_start('pgbed', true)")
                else:
                    cur.execute("SELECT pg_start_backup('pgbed', true, false)")
                tablespaces = self._copy_datadir(standby)
                if self.major >= 15:
                    cur.execute("SELECT labelfile, spcmapfile FROM pg_backup_stop(true)")
                else:
                    cur.execute("SELECT labelfile, spcmapfile FROM pg_stop_backup(false, true)")
                labelfile, spcmapfile = cur.fetchone()
        finally:
            conn.close()
        self._copy_wal(standby)
        (standby.datadir / "backup_label").write_text(labelfile)
        if spcmapfile:
            lines = []
            for line in spcmapfile.splitlines():
                oid, _old = line.split(" ", 1)
                lines.append(f"{oid} {tablespaces[oid]}")
            (standby.datadir / "tablespace_map").write_text("\n".join(lines) + "\n")
        chown_tree(standby.home)
        standby.write_node_settings()
        standby.make_standby_of(self)
        if start:
            standby.start()
            self.wait_until(lambda: self.scalar(
                "SELECT count(*) FROM pg_stat_replication WHERE application_name = %s",
                (name,)) == 1, what=f"{name} streaming")
        return standby

    def _copy_datadir(self, standby: "Cluster") -> dict[str, str]:
        """Copy the data directory while the backup is in progress, tolerating files
        that vanish; tablespaces go to the standby's own tablespace directory."""
        tablespaces = {}
        _copy_tree(self.datadir, standby.datadir, top=True)
        tblspc = self.datadir / "pg_tblspc"
        for entry in sorted(os.listdir(tblspc)):
            link = tblspc / entry
            if link.is_symlink():
                dest = standby.tablespace_root / f"ts{entry}"
                _copy_tree(Path(os.readlink(link)), dest, top=False)
                tablespaces[entry] = str(dest)
                target_link = standby.datadir / "pg_tblspc" / entry
                if target_link.is_symlink() or target_link.exists():
                    target_link.unlink()
                os.symlink(dest, target_link)
        return tablespaces

    def _copy_wal(self, standby: "Cluster") -> None:
        """Like pg_basebackup -X fetch: the WAL written until the backup stopped."""
        src, dst = self.datadir / "pg_wal", standby.datadir / "pg_wal"
        (dst / "archive_status").mkdir(parents=True, exist_ok=True)
        for entry in sorted(os.listdir(src)):
            if re.fullmatch(r"[0-9A-F]{24}|[0-9A-F]{8}\.history", entry):
                with contextlib.suppress(FileNotFoundError):
                    shutil.copy2(src / entry, dst / entry)

    def make_standby_of(self, primary: "Cluster", slot: str | None = None) -> None:
        """Standby configuration per major: recovery.conf (11), standby.signal + GUCs (12+)."""
        conninfo = primary.conninfo(application_name=self.name)
        settings = {"primary_conninfo": conninfo, "recovery_target_timeline": "latest"}
        if slot:
            settings["primary_slot_name"] = slot
        if self.major >= 12:
            with open(self.datadir / "postgresql.auto.conf", "a") as auto:
                auto.writelines(f"{k} = '{v}'\n" for k, v in settings.items())
            (self.datadir / "standby.signal").touch()
        else:
            lines = ["standby_mode = 'on'"] + [f"{k} = '{v}'" for k, v in settings.items()]
            (self.datadir / "recovery.conf").write_text("\n".join(lines) + "\n")
        chown_tree(self.datadir)

    def wait_for_replay(self, standby: "Cluster", timeout: float = 180) -> None:
        """Wait until `standby` has replayed everything this node has written."""
        target = self.current_lsn()
        standby.wait_until(
            lambda: standby.scalar("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (target,)),
            timeout=timeout, what=f"replay of {target}")


def _copy_tree(src: Path, dst: Path, top: bool) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for root, dirs, files in os.walk(src):
        rel = os.path.relpath(root, src)
        dest_root = dst / rel if rel != "." else dst
        dest_root.mkdir(exist_ok=True)
        shutil.copymode(root, dest_root)
        if top and rel in _COPY_SKIP_DIR_CONTENTS:
            dirs[:] = []
            continue
        # tablespace links are handled by the caller; temp dirs are not copied
        dirs[:] = [name for name in dirs
                   if not (Path(root, name).is_symlink() or name.startswith("pgsql_tmp"))]
        for name in files:
            if (top and rel == "." and name in _COPY_SKIP_FILES) or name.startswith("pg_internal.init") \
                    or name.startswith("pgsql_tmp"):
                continue
            with contextlib.suppress(FileNotFoundError):
                shutil.copy2(Path(root) / name, dest_root / name)
