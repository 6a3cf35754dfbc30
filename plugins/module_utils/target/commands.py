# -*- coding: utf-8 -*-
# Copyright: pgops.rewind developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The external programs a rewind may run: the target's own `postgres` (single-user
crash recovery, reading a setting) and the operator's restore_command.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess

from ..pg.datadir import STANDBY_FILES
from ..errors import RefusedError, RewindError

# Where distributions put each major's binaries ({major} is filled in).
_BINDIR_CANDIDATES = ("/usr/lib/postgresql/{major}/bin", "/usr/pgsql-{major}/bin",
                      "/usr/local/pgsql-{major}/bin", "/opt/postgresql/{major}/bin",
                      "/usr/local/opt/postgresql@{major}/bin")


class CommandError(RewindError):
    code = "crash_recovery_failed"


def find_postgres(major: int, bindir: str = None) -> str:
    """The `postgres` binary of `major`: in `bindir` when given, else in the usual
    package locations or on PATH. Its version is checked."""
    candidates = [os.path.join(bindir, "postgres")] if bindir else \
        [os.path.join(d.format(major=major), "postgres") for d in _BINDIR_CANDIDATES] + \
        [p for p in (shutil.which("postgres"),) if p]
    for path in candidates:
        if os.access(path, os.X_OK) and _major_of(path) == major:
            return path
    where = bindir or ", ".join(d.format(major=major) for d in _BINDIR_CANDIDATES)
    raise RefusedError("no PostgreSQL %d `postgres` binary found (looked in %s)." % (major, where),
                       hint="Give bindir: the directory holding the target's own PostgreSQL "
                            "%d binaries." % major, code="no_postgres_binary")


def _major_of(path: str):
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=60,
                             check=False).stdout
    except OSError:
        return None
    match = re.search(r"\(PostgreSQL\) (\d+)", out)
    return int(match.group(1)) if match else None


def _config_args(config_file):
    return ["-c", "config_file=%s" % config_file] if config_file else []


def crash_recovery(postgres: str, pgdata: str, config_file: str = None) -> None:
    """Finish crash recovery of an uncleanly stopped cluster in single-user mode, which
    ends with a shutdown checkpoint. A standby's signal files are set aside meanwhile
    (single-user mode refuses standby mode) and put back afterwards."""
    hidden = []
    for name in STANDBY_FILES:
        path = os.path.join(pgdata, name)
        if os.path.exists(path):
            os.rename(path, path + ".pgops-hidden")
            hidden.append(path)
    try:
        cmd = [postgres, "--single", "-F", "-D", pgdata] + _config_args(config_file) + \
            ["template1"]
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=24 * 3600, check=False)
    finally:
        for path in hidden:
            os.rename(path + ".pgops-hidden", path)
    if proc.returncode != 0:
        raise CommandError("crash recovery of the target in single-user mode failed (exit %d): %s"
                           % (proc.returncode, _tail(proc.stderr)),
                           hint="Start the target once by hand to finish crash recovery, stop it "
                                "cleanly, and run again.", code="crash_recovery_failed")


def show_setting(postgres: str, pgdata: str, name: str, config_file: str = None) -> str:
    """A setting of a stopped cluster as its server would see it (`postgres -C`)."""
    cmd = [postgres, "-D", pgdata] + _config_args(config_file) + ["-C", name]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    if proc.returncode != 0:
        raise CommandError("could not read %s of the target (%s)." % (name, _tail(proc.stderr)),
                           code="show_setting_failed")
    return proc.stdout.strip()


def recovery_conf_setting(pgdata: str, name: str):
    """A setting from recovery.conf (PostgreSQL 11 keeps restore_command there)."""
    try:
        with open(os.path.join(pgdata, "recovery.conf")) as handle:
            text = handle.read()
    except OSError:
        return None
    value = None
    for match in re.finditer(r"^\s*%s\s*=?\s*'((?:[^']|'')*)'" % re.escape(name), text, re.M):
        value = match.group(1).replace("''", "'")
    return value


class RestoreCommand:
    """Runs restore_command (%f, %p, %%) to fetch a WAL segment into a directory the
    engine owns, outside the target's pg_wal until the rewind is under way."""

    def __init__(self, command: str, seg_size: int, directory: str):
        if re.search(r"%r", command):
            raise RefusedError("restore_command uses %r, which a rewind cannot supply.",
                               hint="Use a restore_command with only %f, %p and %%.",
                               code="restore_command_invalid")
        bad = re.search(r"%[^fp%]|%$", command)
        if bad:
            raise RefusedError("restore_command has an unknown placeholder %r." % bad.group(0),
                               code="restore_command_invalid")
        self.command = command
        self.seg_size = seg_size
        self.directory = directory
        self.restored = []

    def _scrub(self, text: str) -> str:
        """Its error output without the command's option values (archive credentials:
        --repo1-s3-key=..., AWS_SECRET_ACCESS_KEY=...), which tools like to echo."""
        for secret in sorted(re.findall(r"=([^\s'\"]{4,})", self.command), key=len, reverse=True):
            text = text.replace(secret, "********")
        return text

    def fetch(self, name: str):
        """The path of segment `name` restored from the archive, or None if it has none."""
        path = os.path.join(self.directory, name)
        if os.path.exists(path):
            return path
        os.makedirs(self.directory, 0o700, exist_ok=True)
        command = re.sub(r"%[fp%]", lambda m: {"%f": name, "%p": path, "%%": "%"}[m.group(0)],
                         self.command)
        proc = subprocess.run(command, shell=True, capture_output=True, text=True,
                              timeout=3600, check=False)
        if proc.returncode != 0 or not os.path.exists(path):
            if proc.returncode > 125 or proc.returncode < 0:
                raise CommandError("restore_command was killed or could not run (exit %d) "
                                   "for %s: %s" % (proc.returncode, name,
                                                   self._scrub(_tail(proc.stderr))),
                                   code="restore_command_failed")
            return None
        size = os.path.getsize(path)
        if size != self.seg_size:
            raise CommandError("restore_command restored %s with %d bytes; a segment has %d."
                               % (name, size, self.seg_size), code="restore_command_failed")
        self.restored.append(name)
        return path


def _tail(text: str, lines: int = 5) -> str:
    return " | ".join((text or "").strip().splitlines()[-lines:])


def show_settings(postgres: str, pgdata: str, names, config_file: str = None) -> dict:
    """Several settings of a stopped cluster (`postgres -C`, one process per setting,
    all started at once)."""
    values, failed = {}, []
    with contextlib.ExitStack() as stack:
        procs = {name: stack.enter_context(subprocess.Popen(
            [postgres, "-D", pgdata] + _config_args(config_file) + ["-C", name],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)) for name in names}
        for name, proc in procs.items():
            out, err = proc.communicate(timeout=300)
            if proc.returncode != 0:
                failed.append("%s: %s" % (name, _tail(err)))
            values[name] = out.strip()
    if failed:
        raise CommandError("could not read %s of the target (%s)." % (
            ", ".join(names), "; ".join(failed)), code="show_setting_failed")
    return values
