# -*- coding: utf-8 -*-
# Copyright: pgops.rewind developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One run at a time on a data directory.

The lock is the kernel's: flock() on the data directory itself (opened read-only).
Taking it writes nothing, so a refused run leaves the target byte for byte as it
was, and the kernel drops it when the holder dies: a run killed with -9 never
blocks the next one. Who holds it is read from the kernel too (/proc/locks and
/proc/<pid>), so there is no owner file that could go stale. Processes forked
while the lock is held (the parallel WAL scan) close their copy of the descriptor
at once: a worker that outlives a killed run does not keep the lock. Where a
directory cannot be flock()ed (NFS emulates flock with POSIX locks, which want a
file open for writing), a lock file in the temporary directory, named after the
data directory, takes its place.
"""

from __future__ import annotations

import errno
import fcntl
import os
import pwd
import re
import socket
import tempfile
import time
from typing import Optional

from ..errors import RefusedError

# A pg_rewind_info probe holds a shared lock for an instant: a run retries that long.
PROBE_GRACE_S = 0.1
_held = set()       # descriptors this process holds a run lock with


def _forget_in_child():
    """A forked child closes its copy: the lock stays with the process doing the work."""
    for handle in list(_held):
        try:
            os.close(handle)
        except OSError:
            pass
    _held.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)


def fallback_path(pgdata: str) -> str:
    """/tmp/pgops_rewind-lock-<data directory path>, where a directory cannot be locked."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", os.path.abspath(pgdata).strip("/"))
    return os.path.join(tempfile.gettempdir(), "pgops_rewind-lock-%s" % name)


def _lock(pgdata: str, operation: int, create: bool = True) -> tuple:
    """(descriptor holding the lock, None), or (None, holder) when another process
    holds it. Raises OSError when the data directory cannot be opened."""
    handle = os.open(pgdata, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return _flock(handle, operation)
    except OSError as exc:
        if exc.errno == errno.EINTR:
            raise
    # flock() is not supported on this directory: lock a file of this host instead.
    flags = os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC | (os.O_CREAT if create else 0)
    handle = os.open(fallback_path(pgdata), flags, 0o600)
    return _flock(handle, operation)


def _flock(handle: int, operation: int) -> tuple:
    try:
        fcntl.flock(handle, operation | fcntl.LOCK_NB)
        return handle, None
    except BlockingIOError:
        holder = lock_holder(handle)
        os.close(handle)
        return None, holder
    except OSError:
        os.close(handle)
        raise


class RunLock:
    """Held from before the first read of the target to the end of the run."""

    def __init__(self, pgdata: str):
        self.pgdata = os.path.abspath(pgdata)
        self.handle = None

    def __enter__(self):
        deadline = time.monotonic() + PROBE_GRACE_S
        while True:
            try:
                self.handle, holder = _lock(self.pgdata, fcntl.LOCK_EX)
            except (FileNotFoundError, NotADirectoryError):
                raise RefusedError("target_pgdata %s is not a directory." % self.pgdata,
                                   code="not_a_data_directory") from None
            except OSError as exc:
                raise RefusedError("cannot lock %s: %s." % (self.pgdata, exc.strerror),
                                   code="target_lock_failed") from None
            if self.handle is not None:
                _held.add(self.handle)
                return self
            if time.monotonic() >= deadline:
                raise in_progress_error(self.pgdata, holder)
            time.sleep(0.02)

    def __exit__(self, *exc_info):
        if self.handle is not None:
            _held.discard(self.handle)
            os.close(self.handle)       # releases the lock
            self.handle = None
        return False


def running_rewind(pgdata: str) -> Optional[dict]:
    """The run that holds `pgdata` (pid, host, user, started, command), or None.
    Takes a shared lock for an instant only; a run starting meanwhile waits for it."""
    try:
        handle, holder = _lock(os.path.abspath(pgdata), fcntl.LOCK_SH, create=False)
    except OSError:
        return None         # cannot be opened or locked: nothing a run could hold either
    if handle is not None:
        os.close(handle)
        return None
    return holder


def in_progress_error(pgdata: str, holder: dict) -> RefusedError:
    return RefusedError(
        "another pgops.rewind run is working on %s: %s. This run read and changed nothing."
        % (pgdata, describe(holder)),
        hint="Let it finish (or stop that process) and run again; a run that died holds no "
             "lock. If the job that started it was cancelled, its module may still be running "
             "on this host.",
        code="rewind_in_progress", rewind_in_progress=holder)


def describe(holder: dict) -> str:
    if not holder.get("pid"):
        return "its process cannot be identified on this host (%s)" % holder["host"]
    text = "pid %d on host %s" % (holder["pid"], holder["host"])
    if holder.get("started"):
        text += ", started %s" % holder["started"]
    details = [v for v in (holder.get("user"), holder.get("command")) if v]
    if details:
        text += " (%s)" % ", ".join(details)
    return text


def lock_holder(handle: int) -> dict:
    """Who holds a flock on the file open as `handle`, from /proc/locks and /proc/<pid>."""
    info = os.fstat(handle)
    holder = {"pid": None, "host": socket.gethostname(), "user": None, "started": None,
              "command": None}
    wanted = "%02x:%02x:%d" % (os.major(info.st_dev), os.minor(info.st_dev), info.st_ino)
    try:
        with open("/proc/locks") as handle_locks:
            lines = handle_locks.read().splitlines()
    except OSError:
        return holder
    pids = []
    for line in lines:
        fields = line.split()
        if "->" in fields or "FLOCK" not in fields or wanted not in fields:
            continue
        at = fields.index(wanted)
        pids.append((fields[at - 2] != "WRITE", int(fields[at - 1])))
    pid = sorted(pids)[0][1] if pids else 0
    if pid > 0:                 # 0: a process this host's pid namespace does not show
        holder["pid"] = pid
        holder.update(_process(pid))
    return holder


def _process(pid: int) -> dict:
    """Start time, user and (shortened) command of a process, as far as /proc tells."""
    found = {}
    try:
        with open("/proc/%d/stat" % pid) as handle:
            ticks = int(handle.read().rpartition(")")[2].split()[19])
        with open("/proc/stat") as handle:
            boot = next(int(line.split()[1]) for line in handle if line.startswith("btime"))
        started = boot + ticks / os.sysconf("SC_CLK_TCK")
        found["started"] = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(started))
        with open("/proc/%d/status" % pid) as handle:
            uid = next(int(line.split()[1]) for line in handle if line.startswith("Uid:"))
        try:
            found["user"] = pwd.getpwuid(uid).pw_name
        except KeyError:
            found["user"] = "uid %d" % uid
        with open("/proc/%d/cmdline" % pid, "rb") as handle:
            found["command"] = _short_command(handle.read().decode(errors="replace").split("\0"))
    except (OSError, ValueError, IndexError, StopIteration):
        pass
    return found


def _short_command(argv: list) -> str:
    """The program and script names only: arguments may hold connection strings."""
    words = []
    for index, word in enumerate(a for a in argv if a):
        if index > 3 or "=" in word or (word.startswith("-") and word != "-m") or \
                len(word) > 200:
            break
        words.append(os.path.basename(word) if "/" in word else word)
    return " ".join(words)
