# -*- coding: utf-8 -*-
# Copyright: pgops.rewind developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The clone fallback: when a rewind cannot work, rebuild the target from the source
through the same Source interface, executor and finish as a rewind.

A base backup, taken the way pg_basebackup takes one, over an ordinary connection:
`pg_backup_start` (a temporary replication slot reserves the WAL from there), every
file copied through the Source, `pg_backup_stop`, the WAL between start and stop
fetched into pg_wal, backup_label and tablespace_map written, the target's own
configuration files put back, the standby configured, and pg_control installed last.

The old data directory is never deleted unless the operator says so: the copy is
built in `<pgdata>.pgops-new`, then the old directory is renamed to
`<pgdata>.pgops-old-<timestamp>` and the new one takes its name (tablespaces keep
their locations; their old contents move aside likewise). Until pg_control is in
place PostgreSQL cannot start the copy, and running the same task again completes it
from the journal inside it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from dataclasses import asdict, dataclass, field
from typing import Optional

from ..runtime import faults
from ..plan.assessment import free_space, space_needed, writes_per_filesystem
from ..pg.controlfile import CONTROL_PATH
from ..pg.datadir import DIRECTORY, FILE, STATE_DIR, SYMLINK, is_excluded
from ..target.durability import fsync_path
from ..errors import RefusedError, SourceError
from .execute import execute_plan
from ..plan.identical import drop_identical_copies
from ..plan.filemap import COPY, CREATE, FileAction, Plan
from .finish import node_configuration
from ..standby.hot_standby import raise_settings
from ..pg.lsn import parse_lsn
from ..target.runlock import RunLock
from ..source.factory import fetch_connections
from ..source.interface import ServerSource, running_server
from ..target.directory import BACKUP_LABEL, TargetDirectory

NEW_SUFFIX = ".pgops-new"
OLD_SUFFIX = ".pgops-old-"
JOURNAL_FILE = "clone.json"
KEPT_DIR = "kept"                  # the target's own configuration files, in the journal
BACKUP_LABEL_TEXT = "pgops.rewind clone"


@dataclass
class CloneState:
    """What a clone must remember to be completed by a later run (the journal)."""
    pgdata: str
    old_aside: str                         # where the old data directory went
    tablespaces_aside: dict = field(default_factory=dict)   # version dir -> where it went
    kept_files: list = field(default_factory=list)
    discard_old: bool = False
    old_moved: bool = False

    @classmethod
    def load(cls, path: str) -> "CloneState":
        with open(path) as handle:
            return cls(**json.load(handle))


def lock_directory(pgdata: str) -> str:
    """What a run locks: the data directory -- or, when an interrupted clone left it
    missing mid-swap, the copy being built beside it."""
    building = pgdata + NEW_SUFFIX
    return building if not os.path.isdir(pgdata) and os.path.isdir(building) else pgdata


def clone_in_progress(pgdata: str) -> Optional[str]:
    """The directory holding an interrupted clone of `pgdata` (itself, or the copy
    being built beside it), or None."""
    for candidate in (pgdata, pgdata + NEW_SUFFIX):
        if os.path.isfile(os.path.join(candidate, STATE_DIR, JOURNAL_FILE)):
            return candidate
    return None


def clone_plan(source_files: dict, keep_files, tablespace_links: dict) -> Plan:
    """Every file the source has, copied whole, except what a base backup leaves out,
    the WAL (fetched for the backup's range afterwards), pg_control (installed last)
    and the target's own configuration files."""
    actions = []
    for path, entry in sorted(source_files.items()):
        if is_excluded(path) or path == CONTROL_PATH or path in keep_files or \
                (path.startswith("pg_wal/") and entry.kind == FILE):
            continue
        if entry.kind == SYMLINK:
            if path.startswith("pg_tblspc/"):
                actions.append(FileAction(path, CREATE, kind=SYMLINK,
                                          link_target=tablespace_links.get(path,
                                                                           entry.link_target)))
            continue                      # a symlinked pg_wal becomes a plain directory
        if entry.kind == DIRECTORY:
            actions.append(FileAction(path, CREATE, kind=DIRECTORY))
        else:
            actions.append(FileAction(path, COPY, source_size=entry.size))
    if "pg_wal" in source_files and source_files["pg_wal"].kind == SYMLINK:
        actions.append(FileAction("pg_wal", CREATE, kind=DIRECTORY))
    return Plan(sorted(actions, key=lambda a: (a.action != CREATE, a.path.count("/"), a.path)))


def wal_segments_between(label: str, stop_lsn: int, seg_size: int) -> list:
    """Names of the WAL segments from the backup's start (its label) to `stop_lsn`."""
    match = re.search(r"START WAL LOCATION: \S+ \(file ([0-9A-F]{24})\)", label)
    if not match:
        raise SourceError("the source's backup label has no start location.",
                          code="clone_failed")
    start = match.group(1)
    tli = start[:8]
    per_log = 0x100000000 // seg_size
    first = int(start[8:16], 16) * per_log + int(start[16:], 16)
    last = stop_lsn // seg_size
    return ["%s%08X%08X" % (tli, n // per_log, n % per_log) for n in range(first, last + 1)]


class Clone:
    """One clone of `pgdata` from a libpq source."""

    def __init__(self, pgdata: str, source: ServerSource, source_control, keep_files,
                 sync: bool = True,
                 discard_old: bool = False, progress=None):
        self.pgdata = pgdata
        self.source = source
        self.fmt = source_control.fmt          # same major as the target
        self.seg_size = source_control.xlog_seg_size
        self.keep_files = tuple(keep_files)
        self.sync = sync
        self.discard_old = discard_old
        self.progress = progress
        self.lock = None

    def _lock_building(self) -> None:
        """Lock the copy as soon as it exists: the lock is on the directory itself, so it
        follows it into the data directory's name and a second run is refused there."""
        self.lock = RunLock(self.pgdata + NEW_SUFFIX).__enter__()

    def release(self) -> None:
        if self.lock is not None:
            self.lock.__exit__(None, None, None)
            self.lock = None

    # --- placing the new directory ---------------------------------------------------
    def prepare(self) -> str:
        """Build `<pgdata>.pgops-new` with its journal and the target's own files, then
        swap it in place of the old directory. Returns the journal directory."""
        building = self.pgdata + NEW_SUFFIX
        if os.path.lexists(building):
            raise RefusedError("%s exists and holds no clone journal." % building,
                               hint="Move it away (it is not ours) and run again.",
                               code="clone_in_the_way")
        info = os.stat(self.pgdata)
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        state = CloneState(self.pgdata, self.pgdata + OLD_SUFFIX + stamp,
                           discard_old=self.discard_old)
        os.mkdir(building, info.st_mode & 0o777)
        self._lock_building()
        journal = os.path.join(building, STATE_DIR)
        os.mkdir(journal, 0o700)
        os.mkdir(os.path.join(journal, KEPT_DIR), 0o700)
        for rel in self.keep_files:
            path = os.path.join(self.pgdata, rel)
            if os.path.isfile(path) and not os.path.islink(path):
                shutil.copy2(path, os.path.join(journal, KEPT_DIR, rel.replace("/", "%")))
                state.kept_files.append(rel)
        for link, version_dir in self._tablespace_dirs().items():
            state.tablespaces_aside[version_dir] = version_dir + OLD_SUFFIX + stamp
        self._save(journal, state)
        _sync_tree_top(building, self.sync)
        faults.step("clone swap")
        self._move_old_aside(journal, state)
        return os.path.join(self.pgdata, STATE_DIR)

    def _tablespace_dirs(self) -> dict:
        """{pg_tblspc/<oid>: its version directory} of the old target."""
        found = {}
        tblspc = os.path.join(self.pgdata, "pg_tblspc")
        for name in sorted(os.listdir(tblspc)) if os.path.isdir(tblspc) else ():
            link = os.path.join(tblspc, name)
            version_dir = os.path.join(os.path.realpath(link), self.fmt.tablespace_dir)
            if os.path.isdir(version_dir):
                found["pg_tblspc/" + name] = version_dir
        return found

    def _move_old_aside(self, journal: str, state: CloneState) -> None:
        """The swap; each step can be repeated, so an interruption anywhere is resumed."""
        building = self.pgdata + NEW_SUFFIX
        for version_dir, aside in sorted(state.tablespaces_aside.items()):
            if os.path.isdir(version_dir) and not os.path.exists(aside):
                os.rename(version_dir, aside)
        if os.path.isdir(self.pgdata) and not os.path.exists(state.old_aside) and \
                os.path.isdir(building):
            os.rename(self.pgdata, state.old_aside)
        if os.path.isdir(building) and not os.path.exists(self.pgdata):
            os.rename(building, self.pgdata)
        _sync_dir(os.path.dirname(self.pgdata), self.sync)
        journal = os.path.join(self.pgdata, STATE_DIR)
        state.old_moved = True
        self._save(journal, state)
        if state.discard_old:
            for doomed in [state.old_aside] + list(state.tablespaces_aside.values()):
                shutil.rmtree(doomed, ignore_errors=True)

    def resume(self, where: str) -> str:
        """Finish placing an interrupted clone; returns its journal directory."""
        state = CloneState.load(os.path.join(where, STATE_DIR, JOURNAL_FILE))
        if where != self.pgdata and os.path.isdir(self.pgdata):
            self._lock_building()       # the run locked the old directory, not the copy
        if not state.old_moved or where != self.pgdata:
            self._move_old_aside(os.path.join(where, STATE_DIR), state)
        return os.path.join(self.pgdata, STATE_DIR)

    def _save(self, journal: str, state: CloneState) -> None:
        path = os.path.join(journal, JOURNAL_FILE)
        with open(path + ".tmp", "w") as handle:
            json.dump(asdict(state), handle, indent=1, sort_keys=True)
            handle.flush()
            if self.sync:
                os.fsync(handle.fileno())
        os.replace(path + ".tmp", path)
        _sync_dir(journal, self.sync)

    # --- the copy --------------------------------------------------------------------
    def copy(self, journal: str) -> dict:
        """The base backup into the (swapped-in) new directory; returns what it did."""
        state = CloneState.load(os.path.join(journal, JOURNAL_FILE))
        target = TargetDirectory(self.pgdata, sync=self.sync)
        links = {link: os.path.dirname(version_dir)
                 for link, version_dir in self._old_links(state).items()}
        start_sql, stop_sql = self.fmt.backup.start_sql, self.fmt.backup.stop_sql
        slot = self.source.reserve_wal_temporarily()
        self.source.query(start_sql, (BACKUP_LABEL_TEXT,), what="start a base backup")
        source_files = self.source.list_files()
        plan = clone_plan(source_files, set(self.keep_files) | {BACKUP_LABEL}, links)
        plan, identical, _spared = drop_identical_copies(plan, self.source, self.pgdata)
        if self.progress is not None:
            self.progress.phase("copy", plan.fetch_bytes)
        stats = execute_plan(plan, self.source, target, self.progress)
        (stop_lsn, label, spcmap), = self.source.query(stop_sql, what="stop the base backup")
        stop = parse_lsn(stop_lsn)
        segments = wal_segments_between(label, stop, self.seg_size)
        fetched = self._fetch_wal(target, segments, source_files)
        for rel in state.kept_files:
            with open(os.path.join(journal, KEPT_DIR, rel.replace("/", "%")), "rb") as handle:
                target.replace_file(rel, handle.read())
        target.sync()
        target.replace_file(BACKUP_LABEL, label.encode())
        if spcmap:
            target.replace_file("tablespace_map", _relocated_map(spcmap, links).encode())
        self.source.release_wal(slot)
        return {"files": plan.summary()["files"], "bytes_fetched": stats.bytes_fetched + fetched,
                "files_identical": identical, "backup_stop_lsn": stop_lsn,
                "wal_segments": len(segments), "old_datadir": state.old_aside,
                "old_discarded": state.discard_old, "target": target}

    def _old_links(self, state: CloneState) -> dict:
        """{pg_tblspc/<oid>: version dir} as the old target had them (from the journal)."""
        found = {}
        aside = os.path.join(state.old_aside, "pg_tblspc")
        for name in sorted(os.listdir(aside)) if os.path.isdir(aside) else ():
            found["pg_tblspc/" + name] = os.path.join(
                os.path.realpath(os.path.join(aside, name)), self.fmt.tablespace_dir)
        return found

    def _fetch_wal(self, target, segments, source_files) -> int:
        """The WAL the copy needs to become consistent, and every timeline history."""
        requests = [("pg_wal/" + name, 0, self.seg_size) for name in segments]
        requests += [(p, 0, 1 << 20) for p in sorted(source_files)
                     if re.match(r"^pg_wal/[0-9A-F]{8}\.history$", p)]
        for path, _offset, _length in requests:
            target.create_empty(path)
        fetched = 0
        for path, offset, data in self.source.fetch(iter(requests)):
            if data is None:
                raise SourceError(
                    "the source no longer has %s, which the clone needs." % path,
                    hint="The new primary recycled WAL during the clone: give the rewind "
                         "role REPLICATION (so a slot reserves it) or raise wal_keep_size, "
                         "and run again.", code="clone_wal_removed")
            target.write(path, offset, data)
            fetched += len(data)
        return fetched


def _relocated_map(spcmap: str, links: dict) -> str:
    """tablespace_map with the target's own tablespace locations."""
    out = []
    for line in spcmap.splitlines():
        oid, _sep, location = line.partition(" ")
        out.append("%s %s" % (oid, links.get("pg_tblspc/" + oid, location)))
    return "\n".join(out) + "\n"


def _sync_dir(path: str, sync: bool) -> None:
    if sync:
        fsync_path(path, directory=True)


def _sync_tree_top(path: str, sync: bool) -> None:
    for root, _dirs, _files in os.walk(path):
        _sync_dir(root, sync)
    _sync_dir(os.path.dirname(path), sync)


# --- the job -------------------------------------------------------------------------
def run_clone(run, reason: str) -> None:
    """Rebuild `pgdata` from the source because the path chosen is clone (`reason`)."""
    options, pgdata, result = run.options, run.pgdata, run.result
    source = running_server(run.source)
    if source is None:
        raise RefusedError("the clone fallback copies from a running server.",
                           hint="Give source_server (the new primary) instead of source_pgdata.",
                           code="clone_needs_server")
    files = source.list_files()
    sizes = [(p, e.size) for p, e in files.items() if e.kind == FILE and not is_excluded(p)]
    writes = writes_per_filesystem(pgdata, sizes)
    short = [c for c in space_needed(writes, free_space(pgdata, writes)) if not c.ok]
    result.update(changed=True, path="clone", clone_reason=reason, blocks_copied=0,
                  bytes_to_fetch=sum(size for _p, size in sizes))
    if short and not options.clone_discard_old:
        raise RefusedError(
            "no room to clone beside the old data directory (%s)." % "; ".join(
                c.message for c in short),
            hint="Free space, or set clone_discard_old: true to delete the old data directory "
                 "(everything the old primary holds is lost) before copying.",
            code="clone_no_room")
    parent = os.path.dirname(pgdata)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise RefusedError("the clone needs to create %s%s beside the data directory, and %s "
                           "is not writable." % (pgdata, NEW_SUFFIX, parent),
                           hint="Let the data directory's owner write %s, or rebuild the node "
                                "by hand (pg_basebackup)." % parent,
                           code="clone_parent_not_writable")
    if options.check_mode:
        result["bytes_fetched"] = 0
        return
    clone = Clone(pgdata, source, source.control_file(), options.keep_files, options.sync,
                  options.clone_discard_old, run.timer.progress)
    try:
        with run.timer("clone"):
            _copy_and_finish(run, clone, clone.prepare())
    finally:
        clone.release()


def resume_clone(run, where: str) -> None:
    """Complete a clone an earlier run began (`where` holds its journal)."""
    options = run.options
    source = running_server(run.source)
    if source is None:
        raise RefusedError("an interrupted clone is completed from a running server.",
                           hint="Give source_server (the new primary).",
                           code="clone_needs_server")
    run.result.update(changed=True, path="clone", resumed=True)
    if options.check_mode:
        return
    clone = Clone(run.pgdata, source, source.control_file(), options.keep_files, options.sync,
                  progress=run.timer.progress)
    try:
        with run.timer("clone"):
            _copy_and_finish(run, clone, clone.resume(where))
    finally:
        clone.release()


def _copy_and_finish(run, clone: Clone, journal: str) -> None:
    options, result = run.options, run.result
    clone.source.parallel = fetch_connections(options.parallel, whole_files=True)
    result["fetch_connections"] = clone.source.parallel
    done = clone.copy(journal)
    target = done.pop("target")
    after = clone.source.control_file()         # read after the backup stopped: last
    raised = raise_settings(options, clone.pgdata, [after], result)   # the node's own config
    node_configuration(run, after, raised, target=target)
    faults.step("clone pg_control")
    target.replace_file(CONTROL_PATH, after.raw)      # the clone is complete
    shutil.rmtree(journal)
    _sync_dir(clone.pgdata, clone.sync)
    result.update(done)
