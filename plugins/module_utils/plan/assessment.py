# -*- coding: utf-8 -*-
# Copyright: pgops.rewind developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Before any downtime: which path rejoins the target (none, rewind or clone), what
each would cost, and whether everything a run needs is in place (the preflight).

`pg_rewind_info` answers this while the old primary may still run, so an operator
(or the role) learns that a rewind cannot work -- no space, no privileges, WAL gone --
before a node is stopped. Reads only; the checks are plain values.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Optional

from ..target.commands import RestoreCommand
from ..pg.datadir import FILE, is_excluded
from ..errors import RewindError
from ..wal.discarded import discarded_report
from .changes import scan_target_changes
from .facts import direction_problem, gather_facts, target_facts
from .interrupted import interrupted_facts, is_interrupted
from .walneeds import MISSING_CODE, check_replay_wal, listed_end, replay_segments
from .filemap import COPY, COPY_TAIL, build_plan
from ..pg.lsn import format_lsn
from ..target.runlock import in_progress_error, running_rewind
from ..runtime.scratch import ScratchDirectory
from ..target.server_status import replay_lag_bytes, server_status, written_past_control
from ..target.config_location import config_check, locate_config
from ..pg.datadir import list_datadir
from ..wal.summary import changes_source
from ..source.interface import ServerSource, running_server

PATH_NONE, PATH_REWIND, PATH_CLONE = "none", "rewind", "clone"
# The choices of the options fallback and clone_when, and their defaults (the modules'
# argument spec, RewindOptions and the CLI take them from here).
FALLBACKS = ("fail", "clone")
CLONE_WHEN = ("impossible", "cheaper", "always")
DEFAULT_FALLBACK, DEFAULT_CLONE_WHEN = "fail", "impossible"
# Rewinding the newer primary onto the older one is refused unless asked for.
DEFAULT_ALLOW_OLDER_SOURCE = False

# Of those, the ones that mean the target's WAL is not usable.
_WAL_UNUSABLE = ("wal_missing", "wal_corrupt", "no_common_checkpoint", MISSING_CODE)

# Refusals that make a rewind impossible while a full copy from the source still works.
REWIND_IMPOSSIBLE = {
    "no_hint_protection": "neither data checksums nor wal_log_hints protect the target",
    "no_common_ancestor": "the two histories share no timeline",
    "no_common_checkpoint": "no checkpoint before the fork is left in the target's WAL",
    "wal_missing": "the target's WAL since the last common checkpoint is gone and cannot "
                   "be restored",
    "wal_corrupt": "the target's WAL since the last common checkpoint is damaged",
    MISSING_CODE: "WAL the rewound node must replay is gone from both sides and cannot be "
                  "restored",
}

# Free space kept beyond the bytes a run writes, on every filesystem it writes to.
SPACE_MARGIN_BYTES = 64 << 20
SPACE_MARGIN_RATIO = 0.05

# EXECUTE privileges the rewind role needs on the source (docs/guide.md lists them).
_SOURCE_FUNCTIONS = ("pg_catalog.pg_ls_dir(text, boolean, boolean)",
                     "pg_catalog.pg_stat_file(text, boolean)",
                     "pg_catalog.pg_read_binary_file(text)",
                     "pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean)")


@dataclass
class Check:
    check: str
    ok: bool
    message: str


@dataclass(frozen=True)
class PathChoice:
    """The path that rejoins the target, and why: a value the planning step returns and
    the orchestrator acts on (a choice is never raised)."""
    path: Optional[str]          # None: the source cannot serve this target at all
    reason: str
    rewind_bytes: Optional[int] = None
    wal_bytes: Optional[int] = None
    clone_bytes: Optional[int] = None


_NOT_NEEDED = "no rewind is needed"
_DIVERGED = "the histories diverged; a rewind copies only what changed"
_ALWAYS = "clone_when: always"


def choose_path(rewind_required: bool, impossible: Optional[str], rewind_bytes: int,
                wal_bytes: int, clone_bytes: int, clone_when: str) -> PathChoice:
    """The path with its costs. A rewind costs the bytes it fetches plus the WAL it
    reads; a clone the bytes it copies. 'cheaper' clones only when that is the smaller
    number."""
    costs = (rewind_bytes, wal_bytes, clone_bytes)
    if impossible:
        return PathChoice(PATH_CLONE, "a rewind is impossible: %s" % impossible, *costs)
    if not rewind_required:
        return PathChoice(PATH_NONE, _NOT_NEEDED, *costs)
    if clone_when == "always":
        return PathChoice(PATH_CLONE, _ALWAYS, *costs)
    if clone_when == "cheaper" and clone_bytes < rewind_bytes + wal_bytes:
        reason = ("a clone (%d bytes) costs less than the rewind (%d bytes to fetch + %d bytes "
                  "of WAL to read)" % (clone_bytes, rewind_bytes, wal_bytes))
        return PathChoice(PATH_CLONE, reason, *costs)
    return PathChoice(PATH_REWIND, _DIVERGED, *costs)


def run_path(rewind_required: bool, fallback: str, clone_when: str,
             costs: Optional[tuple] = None) -> PathChoice:
    """The path a run takes when its facts allow a rewind. A clone only when the operator
    allows one (fallback: clone) and clone_when asks for it: 'always' is known before the
    WAL scan (`costs` None), 'cheaper' from the plan's costs (rewind_bytes, wal_bytes,
    clone_bytes)."""
    if not rewind_required:
        return PathChoice(PATH_NONE, _NOT_NEEDED)
    if fallback == "clone" and clone_when == "always":
        return PathChoice(PATH_CLONE, _ALWAYS)
    if fallback == "clone" and clone_when == "cheaper" and costs is not None:
        return choose_path(True, None, *costs, clone_when)
    return PathChoice(PATH_REWIND, _DIVERGED)


def clone_instead(code: str, detail: str, fallback: str) -> Optional[PathChoice]:
    """A refusal (`code`, its message `detail`) met while finding the facts or scanning
    the WAL, as a path: a clone when it rules out only the rewind and the operator
    allows one; None when the refusal stands."""
    if fallback != "clone" or code not in REWIND_IMPOSSIBLE:
        return None
    return PathChoice(PATH_CLONE, impossible_reason(code, detail))


def impossible_reason(code: str, detail: str) -> str:
    """Why a rewind is impossible, from a refusal in REWIND_IMPOSSIBLE."""
    return "%s (%s)" % (REWIND_IMPOSSIBLE[code], detail)


def space_needed(writes: dict, free: dict) -> list:
    """Checks for {filesystem: bytes to write} against {filesystem: bytes free}."""
    checks = []
    for mount, needed in sorted(writes.items()):
        wanted = int(needed * (1 + SPACE_MARGIN_RATIO)) + SPACE_MARGIN_BYTES
        ok = free.get(mount, 0) >= wanted
        checks.append(Check("target_space", ok, "%s: %d MB to write (with margin), %d MB free"
                            % (mount, wanted >> 20, free.get(mount, 0) >> 20)))
    return checks


def assess(target_pgdata: str, source, restore_command: Optional[str] = None,
           fallback: str = DEFAULT_FALLBACK, clone_when: str = DEFAULT_CLONE_WHEN,
           replication: bool = False, running_wal_end: int = 0,
           allow_older_source: bool = DEFAULT_ALLOW_OLDER_SOURCE) -> dict:
    """{plan, preflight} for rejoining `target_pgdata` to `source` (an open Source).
    Conditions that make one path impossible are findings here, not errors.
    `running_wal_end`: where the target's running server is in its WAL (past pg_control)."""
    pgdata = os.path.abspath(target_pgdata)
    checks = [_writable(pgdata)]
    control = target_facts(pgdata)
    hints = Check("hint_protection", control.protects_hint_bits,
                  "data checksums or wal_log_hints are on" if control.protects_hint_bits
                  else "neither data checksums nor wal_log_hints are on: only a clone can "
                       "rejoin this node")
    checks.append(hints)
    checks += _source_checks(source, replication)
    if not all(c.ok for c in checks if c.check == "source_privileges"):
        choice = PathChoice(None, "the source role cannot read the source's files")
        return {"plan": asdict(choice), "preflight": [asdict(c) for c in checks]}
    scratch = ScratchDirectory() if restore_command else None   # WAL restored for the probe
    impossible = impossible_code = None
    rewind_bytes = wal_bytes = 0
    counts = {"changed_blocks": 0, "changed_relation_files": 0, "wal_bytes": 0,
              "wal_bytes_common_skipped": 0, "wal_records": 0, "file_events": {},
              "changed_blocks_from": None, "discarded": None}
    rewind_writes = {}
    facts = None
    try:
        restore = RestoreCommand(restore_command, control.xlog_seg_size, scratch.path) \
            if restore_command else None
        try:
            facts = gather_facts(pgdata, control, source, restore, running_wal_end)
            source_files = source.list_files()
            if facts.rewind_required:
                changes = scan_target_changes(pgdata, facts, restore)
                wal_bytes = changes.wal_bytes
                counts = {"changed_blocks": len(changes.blocks),
                          "changed_relation_files": len(changes.blocks.segments()),
                          "wal_bytes": changes.wal_bytes, "wal_records": changes.records,
                          "wal_bytes_common_skipped": changes.common_skipped,
                          "file_events": dict(changes.file_events),
                          "changed_blocks_from": changes_source(changes),
                          "discarded": discarded_report(changes, source)}
                target_files = list_datadir(pgdata)
                source_end = source.wal_files_end(facts.source)
                plan = build_plan(source_files, target_files, changes.blocks,
                                  control.fmt.tablespace_dir, facts.keep_wal, (),
                                  facts.wal_copy_rule(source_end))
                replay_wal_check(facts, source_end, source_files, plan.actions, target_files,
                                 restore)
                rewind_bytes = plan.fetch_bytes
                rewind_writes = writes_per_filesystem(
                    pgdata, ((a.path, a.fetch_bytes if a.action in (COPY, COPY_TAIL) else 0)
                             for a in plan.actions))
        except RewindError as exc:
            if exc.code not in REWIND_IMPOSSIBLE:
                raise
            impossible, impossible_code = impossible_reason(exc.code, str(exc)), exc.code
            source_files = source.list_files()
        checks.append(Check("wal_available", impossible_code not in _WAL_UNUSABLE,
                            "the target's WAL from the last common checkpoint is readable"
                            if impossible is None else impossible))
    finally:
        if scratch is not None:
            scratch.remove()
    clone_files = [(path, entry.size) for path, entry in source_files.items()
                   if entry.kind == FILE and not is_excluded(path)]
    clone_bytes = sum(size for _path, size in clone_files)
    choice = choose_path(bool(facts and facts.rewind_required), impossible, rewind_bytes,
                         wal_bytes, clone_bytes, clone_when)
    if choice.path == PATH_CLONE:
        allowed = fallback == "clone"
        hints.ok = hints.ok or allowed          # a clone does not need them
        if allowed:
            checks += _clone_privileges(source, control.fmt)
        checks.append(Check("rewind_possible", allowed, choice.reason + (
            "; the clone fallback rebuilds the node from the source" if allowed else
            "; set fallback: clone (role: pg_rewind_fallback: clone) to rebuild it from the "
            "source, keeping the old data directory aside")))
        # the old data directory stays (renamed) beside the copy
        clone_writes = writes_per_filesystem(pgdata, clone_files)
        checks += space_needed(clone_writes, free_space(pgdata, clone_writes))
    elif choice.path == PATH_REWIND:
        checks += space_needed(rewind_writes, free_space(pgdata, rewind_writes))
    if facts is not None and facts.rewind_required:
        check = direction_check(direction_problem(facts), allow_older_source)
        checks.insert(0, check)
        if not check.ok:
            choice = PathChoice(None, check.message)
    result = dict(counts, plan=asdict(choice), preflight=[asdict(c) for c in checks])
    if facts is not None:
        result.update(facts.summary())
        result["source"] = facts.source.summary()
    return result


def replay_wal(facts, source_end: int, source_paths) -> tuple:
    """(segments, from, to) a rewound node replays from its own pg_wal: from the facts, up
    to the source's end of WAL as far as its listing (`source_paths`) saw it (what it
    writes later is streamed)."""
    start, seg = facts.replay_start()[0], facts.target.xlog_seg_size
    end = listed_end(source_paths, facts.source_timeline, seg, source_end)
    return replay_segments(facts.source_history, start, end, seg), start, end


def replay_wal_check(facts, source_end: int, source_paths, actions, target_paths,
                     restore) -> tuple:
    """replay_wal(); refuses (plan/walneeds.py) when a segment will be neither in the
    target's pg_wal after `actions` nor restorable."""
    replay = replay_wal(facts, source_end, source_paths)
    check_replay_wal(replay[0], actions, target_paths, restore is not None, *replay[1:])
    return replay


def direction_check(problem: str, allowed: bool) -> Check:
    """The preflight's answer to 'is the target the older primary?' (facts.direction_problem)."""
    if not problem:
        return Check("direction", True, "the target's history does not descend from the "
                                        "source's current timeline")
    if allowed:
        return Check("direction", True, problem + " Allowed by allow_older_source.")
    return Check("direction", False, problem + " To return to the old primary on purpose, set "
                 "allow_older_source: true (role: pg_rewind_allow_older_source).")


def inspect_and_assess(target_pgdata: str, source=None, target_server: Optional[str] = None,
                       config_file: Optional[str] = None, **options) -> dict:
    """What pg_rewind_info reports: the target's control data, server and configuration
    files, and, given a source, the facts, the plan and the preflight. Refuses while a
    rewind runs on the target (its files are changing), naming that run."""
    holder = running_rewind(target_pgdata)
    if holder is not None:
        raise in_progress_error(os.path.abspath(target_pgdata), holder)
    if is_interrupted(target_pgdata):
        result = interrupted_facts(target_pgdata, source)
    else:
        result = {"target": target_facts(target_pgdata).summary()}
    result["rewind_in_progress"] = None
    server = server_status(target_server) if target_server else None
    if server is not None:
        result["server"] = server
    if source is None:
        return result
    if result.get("rewind_interrupted"):
        choice = PathChoice(PATH_REWIND, "an interrupted rewind: the same task completes it")
        result.update(plan=asdict(choice), preflight=[asdict(_writable(target_pgdata))])
        return result
    running = running_server(source)
    if running is not None and server and server.get("in_recovery"):
        position = format_lsn(running.wal_position(running.control_file()))
        server["replay_lag_bytes"] = replay_lag_bytes(server, position)
    result.update(assess(target_pgdata, source, running_wal_end=written_past_control(server), **options))
    _check_config(target_pgdata, result, config_file, server)
    return result


def _check_config(pgdata: str, result: dict, given: Optional[str], server) -> None:
    """Where the configuration is (result["config"]), and the preflight check config_file:
    found now, while the node may run, not after it was stopped."""
    major = result["target"]["pg_major"]
    location = locate_config(pgdata, major, given, server)
    result["config"] = location
    ok, message = config_check(os.path.abspath(pgdata), major, location)
    result.setdefault("preflight", []).append(asdict(Check("config_file", ok, message)))


def _writable(pgdata: str) -> Check:
    info = os.stat(pgdata)
    ok = info.st_uid == os.geteuid() and os.access(pgdata, os.W_OK | os.X_OK)
    if ok:
        return Check("target_writable", True, "%s is owned and writable by uid %d"
                     % (pgdata, info.st_uid))
    return Check("target_writable", False, "%s is owned by uid %d, not by the running user "
                 "(uid %d), or not writable: run as the data directory's owner"
                 % (pgdata, info.st_uid, os.geteuid()))


def _missing_functions(source: ServerSource, functions) -> tuple:
    """(superuser, replication, functions the role may not EXECUTE)."""
    rows = source.query(
        "SELECT r.rolsuper, r.rolreplication" + "".join(
            ", pg_catalog.has_function_privilege(%s, 'EXECUTE')" % _literal(f)
            for f in functions) +
        " FROM pg_catalog.pg_roles r WHERE r.rolname = current_user",
        what="check the rewind role's privileges")
    superuser, replicator, *granted = rows[0]
    return superuser, replicator, [f for f, ok in zip(functions, granted) if not ok]


def _clone_privileges(source, fmt) -> list:
    server = running_server(source)
    if server is None:
        return [Check("clone_source", False, "the clone fallback copies from a running server: "
                                             "give source_server")]
    superuser, _replicator, missing = _missing_functions(server, fmt.backup.signatures)
    return [Check("clone_privileges", superuser or not missing,
                  "the role may take a base backup" if superuser or not missing else
                  "the role lacks EXECUTE on %s, which the clone needs" % ", ".join(missing))]


def _source_checks(source, replication: bool) -> list:
    server = running_server(source)
    if server is None:
        return [Check("source_privileges", True, "the source is a local data directory")]
    superuser, replicator, missing = _missing_functions(server, _SOURCE_FUNCTIONS)
    checks = [Check("source_privileges", superuser or not missing,
                    "the role may read the source's files" if superuser or not missing else
                    "the role lacks EXECUTE on %s: GRANT it (docs/guide.md, Prerequisites)"
                    % ", ".join(missing))]
    if replication:
        checks.append(Check("replication_privilege", bool(superuser or replicator),
                            "the role may create a replication slot" if superuser or replicator
                            else "the role has no REPLICATION attribute, needed to create the "
                                 "replication slot: ALTER ROLE ... REPLICATION, or create no slot"))
    return checks


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _existing_ancestor(path: str) -> str:
    while not os.path.exists(path):
        path = os.path.dirname(path)
    return os.path.realpath(path)


def _mount_of(path: str) -> str:
    path = _existing_ancestor(path)
    device = os.stat(path).st_dev
    while path != "/" and os.stat(os.path.dirname(path)).st_dev == device:
        path = os.path.dirname(path)
    return path


def writes_per_filesystem(pgdata: str, sized_paths) -> dict:
    """{mount point: bytes} for (relative path, bytes) pairs, following the target's own
    tablespace links (a clone or rewind writes where the target keeps them)."""
    writes, mounts = {}, {}
    for rel, size in sized_paths:
        if not size:
            continue
        directory = os.path.dirname(os.path.join(pgdata, rel))
        if directory not in mounts:
            mounts[directory] = _mount_of(directory)
        writes[mounts[directory]] = writes.get(mounts[directory], 0) + size
    return writes


def free_space(pgdata: str, writes: Optional[dict] = None) -> dict:
    mounts = set(writes or ()) | {_mount_of(pgdata)}
    free = {}
    for mount in mounts:
        stat = os.statvfs(mount)
        free[mount] = stat.f_bavail * stat.f_frsize
    return free
