"""The collection builds and installs with ansible-galaxy, and the artifact is complete."""

import json
import subprocess

import yaml

from support.env import COLLECTIONS_PATH, REPO, VENV_PYTHON


def test_collection_builds_and_installs(collection):
    manifest = json.loads((collection / "MANIFEST.json").read_text())
    info = manifest["collection_info"]
    assert (info["namespace"], info["name"]) == ("pgops", "rewind")
    assert info["license"] == ["GPL-3.0-or-later"]
    assert "database" in info["tags"]
    shipped = {entry["name"] for entry in json.loads((collection / "FILES.json").read_text())["files"]}
    for path in REPO.joinpath("plugins").rglob("*.py"):
        assert str(path.relative_to(REPO)) in shipped, f"{path} is not in the artifact"
    assert not any(name.startswith((".cache", ".venv", "tests/output")) for name in shipped)
    listing = subprocess.run(
        [VENV_PYTHON.parent / "ansible-galaxy", "collection", "list", "pgops.rewind",
         "-p", COLLECTIONS_PATH, "--format", "json"], check=True, capture_output=True, text=True)
    assert yaml.safe_load((REPO / "galaxy.yml").read_text())["version"] in listing.stdout
