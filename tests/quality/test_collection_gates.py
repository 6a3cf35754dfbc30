"""The ecosystem's own gates, run on the collection as users get it:
ansible-test sanity and units, ansible-lint (production profile), antsibull-docs,
antsibull-changelog, the galaxy build/install round trip from a clean tree, and an
execution environment build context from ansible-builder."""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile

import pytest
import yaml

from support.env import COLLECTIONS_PATH, REPO, VENV_PYTHON

BIN = VENV_PYTHON.parent
VERSION = yaml.safe_load((REPO / "galaxy.yml").read_text())["version"]
TARBALL = "pgops-rewind-%s.tar.gz" % VERSION


def _env(**extra):
    env = dict(os.environ)
    env.update({"PATH": "%s:%s" % (BIN, env.get("PATH", "/usr/bin:/bin")),
                "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS_PATH), "NO_COLOR": "1",
                "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0", "PY_COLORS": "0"})
    env.update(extra)
    return env


def _run(cmd, cwd, timeout=1800, **env):
    proc = subprocess.run([str(c) for c in cmd], cwd=str(cwd), env=_env(**env),
                          capture_output=True, text=True, timeout=timeout, check=False)
    return proc.returncode, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def clean_tree(tmp_path_factory, collection):
    """The committed files only (git ls-files of the working tree), laid out under
    ansible_collections/pgops/rewind as ansible-test wants."""
    root = tmp_path_factory.mktemp("clean") / "ansible_collections" / "pgops" / "rewind"
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                           cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    for name in files:
        source = REPO / name
        if source.is_file():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, root / name)
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    return root


@pytest.mark.xdist_group("gates")
def test_ansible_test_sanity(clean_tree):
    rc, out = _run([BIN / "ansible-test", "sanity", "--python", "3.11", "--color", "no"],
                   clean_tree)
    assert rc == 0, out[-8000:]
    assert 'Running sanity test "pylint"' in out and 'Running sanity test "validate-modules"' in out


@pytest.mark.xdist_group("gates")
def test_ansible_test_units(clean_tree):
    rc, out = _run([BIN / "ansible-test", "units", "--python", "3.11", "--color", "no"],
                   clean_tree)
    assert rc == 0, out[-8000:]
    assert " passed" in out


@pytest.mark.xdist_group("gates")
def test_ansible_lint_production(clean_tree):
    rc, out = _run([BIN / "ansible-lint", "--profile", "production"], clean_tree)
    assert rc == 0, out[-8000:]
    assert "Profile 'production' was required, and it passed" in out


@pytest.mark.xdist_group("gates")
def test_antsibull_docs_and_changelog(clean_tree):
    rc, out = _run([BIN / "antsibull-docs", "lint-collection-docs", "--plugin-docs", "."],
                   clean_tree)
    assert rc == 0, out[-8000:]
    rc, out = _run([BIN / "antsibull-changelog", "lint"], clean_tree)
    assert rc == 0, out[-8000:]
    assert (clean_tree / "CHANGELOG.rst").read_text().count("v" + VERSION) >= 1


@pytest.mark.xdist_group("gates")
def test_galaxy_build_and_install_round_trip(clean_tree, tmp_path):
    rc, out = _run([BIN / "ansible-galaxy", "collection", "build", "--output-path", tmp_path,
                    "."], clean_tree)
    assert rc == 0, out
    tarball = tmp_path / TARBALL
    with tarfile.open(tarball) as archive:
        names = set(archive.getnames())
    assert {"plugins/modules/pg_rewind.py", "roles/pg_rewind/meta/argument_specs.yml",
            "playbooks/rejoin_old_primary.yml", "meta/execution-environment.yml",
            "CHANGELOG.rst"} <= names
    assert not any(n.startswith((".cache", "tests/output")) for n in names)
    dest = tmp_path / "installed"
    rc, out = _run([BIN / "ansible-galaxy", "collection", "install", "--force", "-p", dest,
                    tarball], tmp_path, ANSIBLE_COLLECTIONS_PATH=str(dest))
    assert rc == 0, out
    installed = dest / "ansible_collections" / "pgops" / "rewind"
    assert (installed / "roles/pg_rewind/meta/argument_specs.yml").is_file(), out
    assert (installed / "MANIFEST.json").is_file(), out
    # Each plugin's own documentation, read from the installed copy only (a missing
    # plugin makes ansible-doc warn and still exit 0, so look for the doc text).
    for kind, name, text in (
            ("module", "pgops.rewind.pg_rewind", "Rewind a failed-over PostgreSQL primary"),
            ("role", "pgops.rewind.pg_rewind", "Rejoin a failed-over PostgreSQL primary"),
            ("filter", "pgops.rewind.conninfo", "Build a libpq connection string")):
        rc, out = _run([BIN / "ansible-doc", "--json", "-t", kind, name], tmp_path,
                       ANSIBLE_COLLECTIONS_PATH=str(dest))
        assert rc == 0 and "was not found" not in out, (kind, name, out[-3000:])
        assert text in out and str(installed) in out, (kind, name, out[-3000:])


@pytest.mark.xdist_group("gates")
def test_execution_environment_build_context(clean_tree, tmp_path):
    rc, out = _run([BIN / "ansible-galaxy", "collection", "build", "--output-path", tmp_path,
                    "."], clean_tree)
    assert rc == 0, out
    definition = tmp_path / "execution-environment.yml"
    definition.write_text(
        "---\nversion: 3\nimages:\n  base_image:\n    name: quay.io/ansible/awx-ee:latest\n"
        "dependencies:\n  galaxy:\n    collections:\n"
        "      - name: %s\n        type: file\n" % (tmp_path / TARBALL))
    rc, out = _run([BIN / "ansible-builder", "create", "-f", definition, "-c",
                    tmp_path / "context"], tmp_path)
    assert rc == 0, out
    assert {"Containerfile", "Dockerfile"} & set(os.listdir(tmp_path / "context"))
    # What the image build would install for the collection: its python and system needs.
    installed = tmp_path / "collections"
    rc, out = _run([BIN / "ansible-galaxy", "collection", "install", "--force", "-p", installed,
                    tmp_path / TARBALL], tmp_path,
                   ANSIBLE_COLLECTIONS_PATH=str(installed))
    assert rc == 0 and (installed / "ansible_collections/pgops/rewind/bindep.txt").is_file(), out
    rc, out = _run([BIN / "ansible-builder", "introspect", installed], tmp_path)
    assert rc == 0, out
    assert "psycopg2-binary" in out and "crc32c" in out and "libpq-dev" in out
