"""A module's RETURN documentation, and the keys of a result it does not document."""

from __future__ import annotations

import ast

import yaml

from .env import REPO

# What Ansible itself adds to (or reads from) every result, documented by Ansible.
COMMON_KEYS = {"changed", "failed", "msg", "invocation", "warnings", "deprecations", "diff",
               "skipped", "_stdout", "_stderr", "exception"}


def documented_returns(module: str) -> dict:
    tree = ast.parse((REPO / "plugins" / "modules" / (module + ".py")).read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and node.targets[0].id == "RETURN":
            return yaml.safe_load(node.value.value)
    raise AssertionError("%s has no RETURN" % module)


def undocumented_keys(result: dict, documented: dict, where: str = "") -> list:
    """Paths of keys in `result` that `documented` (a RETURN or a `contains`) lacks,
    looking into dicts (and lists of dicts) whose documentation has `contains`."""
    missing = []
    for key, value in result.items():
        if not where and key in COMMON_KEYS:
            continue
        path = where + key
        if key not in documented:
            missing.append(path)
            continue
        contains = (documented[key] or {}).get("contains")
        if contains is None:
            continue
        values = value if isinstance(value, list) else [value]
        for item in values:
            if isinstance(item, dict):
                missing += undocumented_keys(item, contains, path + ".")
    return missing


def dicts_without_contains_or_sample(documented: dict, where: str = "") -> list:
    """Documented dicts (and lists of dicts) lacking `contains`, or, at the top, `sample`."""
    lacking = []
    for key, entry in documented.items():
        entry = entry or {}
        is_dict = entry.get("type") == "dict" or entry.get("elements") == "dict"
        if is_dict and "contains" not in entry:
            lacking.append(where + key + " (contains)")
        if is_dict and not where and "sample" not in entry:
            lacking.append(key + " (sample)")
        if "contains" in entry:
            lacking += dicts_without_contains_or_sample(entry["contains"], where + key + ".")
    return lacking
