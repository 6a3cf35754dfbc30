"""version_added agrees with the releases: every value (modules, doc fragments, RETURN,
at any depth) is a release in changelogs/changelog.yaml, and galaxy.yml's version is the
latest release, so nothing claims a version that was never cut."""

import ast
from pathlib import Path

import yaml

COLLECTION = Path(__file__).resolve().parents[3]


def _version_key(text):
    return tuple(int(part) for part in str(text).split("."))


def _docs(path: Path) -> list:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) \
                and isinstance(node.value.value, str) and node.targets[0].id in (
                    "DOCUMENTATION", "RETURN", "TARGET"):
            found.append(yaml.safe_load(node.value.value))
    return found


def _versions_added(value, where=""):
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "version_added" and not isinstance(item, dict):
                yield where, str(item)
            else:
                yield from _versions_added(item, where + "." + str(key))
    elif isinstance(value, list):
        for item in value:
            yield from _versions_added(item, where)


def test_version_added_names_a_release():
    releases = yaml.safe_load((COLLECTION / "changelogs" / "changelog.yaml").read_text())["releases"]
    galaxy = yaml.safe_load((COLLECTION / "galaxy.yml").read_text())["version"]
    assert galaxy == max(releases, key=_version_key)
    files = sorted((COLLECTION / "plugins" / "modules").glob("*.py")) + \
        sorted((COLLECTION / "plugins" / "doc_fragments").glob("*.py"))
    wrong = [(path.name, where, version) for path in files for doc in _docs(path)
             for where, version in _versions_added(doc) if version not in releases]
    assert wrong == []
