# -*- coding: utf-8 -*-
# Copyright: pgops.rewind developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Writing into the target data directory: safely, with the cluster's modes, durably.

`TargetDirectory` is the only thing in the engine that changes the target. It
refuses to work as root or as anyone but the directory's owner, keeps every path
inside the data directory (only tablespace links and a symlinked pg_wal may lead
out of it), gives new files and directories the cluster's permissions (0600/0700,
or 0640/0750 with group access), and fsyncs what it touched before the rewind is
declared done.
"""

from __future__ import annotations

import os
import stat
import time

from ..pg.controlfile import DB_IN_ARCHIVE_RECOVERY, ControlFile, updated_control_file
from . import durability
from .writeback import WriteBack
from ..runtime import faults
from ..pg.datadir import DIRECTORY
from ..errors import RefusedError, RewindError
from ..pg.datadir import check_safe_path
from ..pg.lsn import format_lsn, segment_name

BACKUP_LABEL = "backup_label"


class WriteError(RewindError):
    code = "target_write"


def _wrap_os_errors(method):
    """An OSError while writing becomes a WriteError that names the path (the task can be
    run again once the cause is fixed). Every such change is a step for fault injection."""
    def wrapper(self, rel, *args):
        faults.step("%s %s" % (method.__name__, rel))
        durability.record("change", "%s %s" % (method.__name__, rel))
        try:
            return method(self, rel, *args)
        except RewindError:
            raise
        except OSError as exc:
            raise WriteError("could not %s %s in the target: %s"
                             % (method.__name__.replace("_", " "), rel, exc.strerror)) from None
    wrapper.__name__ = method.__name__
    wrapper.__doc__ = method.__doc__
    return wrapper


class TargetDirectory:
    def __init__(self, root: str, sync: bool = True):
        self.root = os.path.abspath(root)
        self.sync_enabled = sync
        info = os.stat(self.root)
        self.owner = info.st_uid
        group = info.st_mode & 0o070 == 0o050
        self.dir_mode = 0o750 if group else 0o700
        self.file_mode = 0o640 if group else 0o600
        self._checked_dirs = {self.root}
        self._handle = None
        self._handle_path = None
        self._dirty_files = set()
        self._dirty_dirs = set()
        self.sync_whole_tree = False    # a resumed run: see target/durability.py
        self.bytes_written = 0
        self.writeback = WriteBack(sync)    # the disk writes while the copy fetches

    # --- who may write ---------------------------------------------------------
    def check_writer(self) -> None:
        """Refuse to change a data directory as root or as a user who does not own it."""
        euid = os.geteuid()
        if euid == 0:
            raise RefusedError(
                "refusing to rewind %s as root: files would end up owned by root." % self.root,
                hint="Run as the data directory's owner (become_user: postgres).",
                code="run_as_root")
        if euid != self.owner:
            raise RefusedError(
                "refusing to rewind %s as uid %d: the data directory belongs to uid %d."
                % (self.root, euid, self.owner),
                hint="Run as the data directory's owner (become_user: postgres).",
                code="not_owner")

    def preflight(self, actions) -> None:
        """Before the point of no return: every file the plan changes must be writable and
        every directory it adds to or removes from must allow that, or nothing is done."""
        problems = []
        checked_dirs = {}

        def dir_ok(directory):
            if directory not in checked_dirs:
                checked_dirs[directory] = not os.path.isdir(directory) or \
                    os.access(directory, os.W_OK | os.X_OK)
            return checked_dirs[directory]

        for act in actions:
            path = self.path(act.path)
            exists = os.path.lexists(path)
            touches_file = act.action in ("copy", "copy_tail", "truncate") or act.blocks
            if touches_file and exists and not os.path.islink(path) and \
                    not os.access(path, os.W_OK):
                problems.append(act.path)
            elif (act.action in ("remove", "create") or (act.action == "copy" and not exists)) \
                    and not dir_ok(os.path.dirname(path)):
                problems.append(os.path.dirname(act.path) or ".")
        if problems:
            raise RefusedError(
                "the rewind could not write %d path(s) in the target, e.g. %s; nothing was "
                "changed." % (len(problems), ", ".join(sorted(set(problems))[:5])),
                hint="Give the data directory's owner write access to them (they may belong "
                     "to another user or be read-only), or list them in keep_files.",
                code="target_not_writable")

    # --- paths -----------------------------------------------------------------
    def path(self, rel: str) -> str:
        """Absolute path of `rel`, which must stay inside the data directory: every
        directory on the way must be a real directory, except a tablespace link
        (pg_tblspc/<oid>) or a symlinked pg_wal."""
        check_safe_path(rel)
        parts = rel.split("/")
        current = self.root
        for index, part in enumerate(parts[:-1]):
            current = os.path.join(current, part)
            if current in self._checked_dirs:
                continue
            try:
                info = os.lstat(current)
            except FileNotFoundError:
                return os.path.join(self.root, rel)     # nothing to follow yet
            link_ok = (index == 1 and parts[0] == "pg_tblspc") or (index == 0 and part == "pg_wal")
            if stat.S_ISLNK(info.st_mode) and not link_ok:
                raise RefusedError("%s leads through a symbolic link out of the data directory."
                                   % rel, code="unsafe_path")
            if not stat.S_ISLNK(info.st_mode) and not stat.S_ISDIR(info.st_mode):
                raise RefusedError("%s: %s is not a directory." % (rel, current),
                                   code="type_mismatch")
            self._checked_dirs.add(current)
        return os.path.join(self.root, rel)

    # --- writing ---------------------------------------------------------------
    def _open(self, rel: str, truncate: bool = False):
        if self._handle_path == rel and not truncate:
            return self._handle
        self.close()
        path = self.path(rel)
        flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
        if truncate:
            flags |= os.O_TRUNC
        existed = os.path.lexists(path)
        self._handle = os.open(path, flags, self.file_mode)
        self._handle_path = rel
        self._dirty_files.add(rel)
        if not existed:
            self._dirty_dirs.add(os.path.dirname(path))
        return self._handle

    @_wrap_os_errors
    def create_empty(self, rel: str) -> None:
        """Create `rel` or cut it to nothing (before a whole-file copy)."""
        self._open(rel, truncate=True)

    @_wrap_os_errors
    def write(self, rel: str, offset: int, data) -> None:
        handle = self._open(rel)
        view = memoryview(data)
        while view:
            written = os.pwrite(handle, view, offset)
            offset += written
            view = view[written:]
            self.bytes_written += written
        self.writeback.written(handle, len(data), rel)

    @_wrap_os_errors
    def truncate(self, rel: str, size: int) -> None:
        handle = self._open(rel)
        os.ftruncate(handle, size)

    @_wrap_os_errors
    def remove(self, rel: str, kind: str) -> None:
        path = self.path(rel)
        if self._handle_path == rel:
            self.close()
        try:
            if kind == DIRECTORY and not os.path.islink(path):
                os.rmdir(path)
            else:
                os.unlink(path)
        except FileNotFoundError:
            return
        self._dirty_files.discard(rel)
        self._dirty_dirs.add(os.path.dirname(path))

    @_wrap_os_errors
    def mkdir(self, rel: str) -> None:
        path = self.path(rel)
        if not os.path.isdir(path):
            os.mkdir(path, self.dir_mode)
            os.chmod(path, self.dir_mode)       # not narrowed by the umask
            self._dirty_dirs.add(os.path.dirname(path))

    @_wrap_os_errors
    def symlink(self, rel: str, link_target: str) -> None:
        """A tablespace link; the directory it points to is created when missing."""
        path = self.path(rel)
        if not os.path.isdir(link_target):
            os.makedirs(link_target, self.dir_mode)
            self._dirty_dirs.update((link_target, os.path.dirname(link_target)))
        if not os.path.lexists(path):
            os.symlink(link_target, path)
            self._dirty_dirs.add(os.path.dirname(path))

    @_wrap_os_errors
    def replace_file(self, rel: str, data: bytes) -> None:
        """Write a small file atomically (temp file + rename), durably when syncing."""
        self.close()
        path = self.path(rel)
        temp = path + ".pgops-tmp"
        handle = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW,
                         self.file_mode)
        try:
            os.write(handle, data)
            if self.sync_enabled:
                durability.fsync_fd(handle, temp)
        finally:
            os.close(handle)
        os.replace(temp, path)
        durability.record("rename", path)
        self._sync_dir(os.path.dirname(path))

    def close(self) -> None:
        if self._handle is not None:
            self.writeback.start(self._handle, self._handle_path)
            os.close(self._handle)
        self._handle = None
        self._handle_path = None

    # --- durability ------------------------------------------------------------
    def sync(self) -> None:
        """fsync every file written and every directory whose entries changed (after an
        interrupted run: every file and directory of the target)."""
        self.close()
        if not self.sync_enabled:
            return
        if self.sync_whole_tree:
            durability.sync_tree(self.root)
            self._dirty_files.clear()
        for rel in sorted(self._dirty_files):
            path = os.path.join(self.root, rel)
            try:
                handle = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
            except FileNotFoundError:
                continue
            try:
                durability.fsync_fd(handle, path)
            finally:
                os.close(handle)
        for directory in sorted(self._dirty_dirs):
            self._sync_dir(directory)
        self._dirty_files.clear()
        self._dirty_dirs.clear()

    def _sync_dir(self, directory: str) -> None:
        if not self.sync_enabled:
            return
        try:
            handle = os.open(directory, os.O_RDONLY)
        except FileNotFoundError:
            return
        try:
            durability.fsync_fd(handle, directory)
        finally:
            os.close(handle)


def backup_label_text(redo: int, tli: int, checkpoint: int, seg_size: int) -> str:
    """The backup_label that makes the rewound target replay from `redo` (as a backup
    taken from a standby: replay must reach the control file's minimum recovery point
    before the cluster is consistent)."""
    return ("START WAL LOCATION: %s (file %s)\nCHECKPOINT LOCATION: %s\n"
            "BACKUP METHOD: pg_rewind\nBACKUP FROM: standby\nSTART TIME: %s\n"
            % (format_lsn(redo), segment_name(tli, redo // seg_size, seg_size),
               format_lsn(checkpoint), time.strftime("%Y-%m-%d %H:%M:%S %Z")))


def rewound_control_file(source_after: ControlFile, end_lsn: int, end_tli: int) -> bytes:
    """The source's control file, in archive recovery until `end_lsn` is replayed."""
    return updated_control_file(source_after, state=DB_IN_ARCHIVE_RECOVERY,
                                min_recovery_point=end_lsn, min_recovery_point_tli=end_tli)


def is_pending_rewind(root: str, control: ControlFile) -> bool:
    """A target rewound (by us or pg_rewind) but not started since: its backup_label
    says so and pg_control is still in archive recovery."""
    if control.state != DB_IN_ARCHIVE_RECOVERY:
        return False
    try:
        with open(os.path.join(root, BACKUP_LABEL)) as handle:
            return "BACKUP METHOD: pg_rewind" in handle.read(4096)
    except OSError:
        return False


def server_running(root: str) -> bool:
    """Whether a postmaster is running on the data directory (postmaster.pid names a
    live postgres process)."""
    try:
        with open(os.path.join(root, "postmaster.pid")) as handle:
            pid = int(handle.readline().strip())
    except (OSError, ValueError):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as handle:
            cmdline = handle.read()
        return b"postgres" in cmdline or b"postmaster" in cmdline
    except OSError:
        return True


def check_not_running(root: str) -> None:
    if server_running(root):
        raise RefusedError("the target server is running on %s." % root,
                           hint="Stop it first (pg_ctl stop -m fast, or its service); the role "
                                "pgops.rewind.pg_rewind does this for you. A dry run (check "
                                "mode) answers while it runs.",
                           code="target_running")
