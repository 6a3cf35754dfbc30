# -*- coding: utf-8 -*-
# Copyright: pgops.rewind developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The engine from a shell, for debugging on a host without a controller:

    python -m ansible_collections.pgops.rewind.plugins.module_utils.cli rewind \\
        --target-pgdata /var/lib/postgresql/16/main --source-server-env PGOPS_SOURCE --check
    python -m ansible_collections.pgops.rewind.plugins.module_utils.cli info --json - < params.json

The parameters are the modules' (pg_rewind / pg_rewind_info), as flags or as one JSON
object; the same engine call runs and its result is printed as JSON. Connection
strings hold passwords: pass them in JSON on stdin or name an environment variable
(--source-server-env), not on the command line where `ps` shows them.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys

from .errors import RewindError
from .plan.assessment import inspect_and_assess
from .source.connection import scrubbed
from .module_support import REPORTED_DETAILS, argument_defaults, rejoin_argument_spec
from .options import RewindOptions
from .rewind import run
from .source.factory import open_source

_SECRETS = ("source_server", "primary_conninfo", "target_server", "restore_command")
_INFO_PARAMS = ("target_pgdata", "source_server", "source_pgdata", "target_server")
_ASSESS_PARAMS = ("restore_command", "fallback", "clone_when", "config_file",
                  "allow_older_source")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ansible_collections.pgops.rewind.plugins.module_utils.cli",
        description="Run the pgops.rewind engine with the parameters of its modules.")
    parser.add_argument("command", choices=["rewind", "info"])
    parser.add_argument("--json", metavar="JSON|-|@FILE",
                        help="all parameters as one JSON object (- reads stdin)")
    parser.add_argument("--check", action="store_true", help="dry run (check mode)")
    for field in dataclasses.fields(RewindOptions):
        if field.name in ("check_mode", "target_server"):     # (target_server: below)
            continue
        flag = "--" + field.name.replace("_", "-")
        if field.type in ("bool", bool, "Optional[bool]"):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None)
        elif field.name == "keep_files":
            parser.add_argument(flag, help="comma-separated paths")
        elif field.type in ("int", int):
            parser.add_argument(flag, type=int)
        else:
            parser.add_argument(flag)
    parser.add_argument("--target-server")
    for name in _SECRETS:
        parser.add_argument("--%s-env" % name.replace("_", "-"), metavar="VARIABLE",
                            help="read %s from this environment variable" % name)
    return parser


def parameters(argv) -> tuple:
    """(command, params dict) from the command line."""
    args = _parser().parse_args(argv)
    params = {}
    if args.json:
        text = args.json
        if text == "-":
            text = sys.stdin.read()
        elif text.startswith("@"):
            with open(text[1:]) as handle:
                text = handle.read()
        params.update(json.loads(text))
    for key, value in vars(args).items():
        if key in ("command", "json", "check") or key.endswith("_env") or value is None:
            continue
        params[key] = value.split(",") if key == "keep_files" else value
    for name in _SECRETS:
        variable = getattr(args, name + "_env")
        if variable:
            params[name] = os.environ[variable]
    params["check_mode"] = bool(args.check or params.get("check_mode"))
    return args.command, params


def execute(command: str, params: dict) -> dict:
    """The same engine calls the modules make, with the modules' defaults."""
    if command == "info":
        params = dict(argument_defaults(rejoin_argument_spec()),
                      **{k: v for k, v in params.items() if v is not None})
        source = open_source(params.get("source_server"), params.get("source_pgdata"),
                             connect_timeout=params["connect_timeout"],
                             source_timeout=params["source_timeout"])
        try:
            options = {k: params.get(k) for k in _ASSESS_PARAMS}
            options["replication"] = bool(params.get("check_replication"))
            return dict(inspect_and_assess(params["target_pgdata"], source,
                                           params.get("target_server"), **options),
                        changed=False)
        finally:
            if source is not None:
                source.close()
    known = {f.name for f in dataclasses.fields(RewindOptions)}
    unknown = sorted(set(params) - known)
    if unknown:
        raise RewindError("unknown parameter(s): %s" % ", ".join(unknown), code="bad_parameters")
    return run(RewindOptions(**params))


def main(argv=None) -> int:
    command, params = parameters(sys.argv[1:] if argv is None else argv)
    try:
        result = execute(command, params)
    except RewindError as exc:
        result = {"failed": True, "msg": str(exc), "error_code": exc.code, "hint": exc.hint}
        result.update((k, v) for k, v in exc.details.items() if k in REPORTED_DETAILS)
    given = [params[name] for name in _SECRETS if params.get(name)]
    text = scrubbed(json.dumps(result, indent=2, sort_keys=True, default=str), *given,
                    secrets=given)
    sys.stdout.write(text + "\n")
    return 1 if result.get("failed") else 0


if __name__ == "__main__":
    raise SystemExit(main())
