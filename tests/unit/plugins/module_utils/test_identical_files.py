"""Skipping files the target already has is an optimisation: it must never be the reason
a rewind fails (FIPS hosts, hash functions refused or missing on either side)."""

import hashlib

import pytest

from ansible_collections.pgops.rewind.plugins.module_utils.pg import datadir
from ansible_collections.pgops.rewind.plugins.module_utils.plan.identical import drop_identical_copies
from ansible_collections.pgops.rewind.plugins.module_utils.plan.filemap import COPY, Plan, FileAction
from ansible_collections.pgops.rewind.plugins.module_utils.source.local import LocalSource


def _pair(tmp_path):
    """A source and a target directory: one file the same on both, one that differs."""
    source, target = tmp_path / "source", tmp_path / "target"
    for root in (source, target):
        (root / "base" / "1").mkdir(parents=True)
        (root / "base" / "1" / "same").write_bytes(b"x" * 20000)
    (source / "base" / "1" / "differs").write_bytes(b"a" * 8192)
    (target / "base" / "1" / "differs").write_bytes(b"b" * 8192)
    plan = Plan([FileAction("base/1/same", COPY, 20000, 20000),
                 FileAction("base/1/differs", COPY, 8192, 8192)])
    return LocalSource(str(source)), str(target), plan


def test_identical_files_are_not_copied(tmp_path):
    source, target, plan = _pair(tmp_path)
    warnings = []
    kept, skipped, spared = drop_identical_copies(plan, source, target, warnings.append)
    assert [a.path for a in kept.actions] == ["base/1/differs"]
    assert (skipped, spared, warnings) == (1, 20000, [])


def test_digest_is_sha256_as_postgresql_computes_it(tmp_path):
    source, _target, _plan = _pair(tmp_path)
    digests = source.digests([("base/1/same", 20000)])
    assert digests == {"base/1/same": hashlib.sha256(b"x" * 20000).hexdigest()}


@pytest.mark.parametrize("broken", ["md5", "sha256"])
def test_a_host_that_cannot_hash_copies_everything(tmp_path, monkeypatch, broken):
    """As on a FIPS-mode host, where hashlib.md5() raises ValueError: whichever digest
    the check uses may be refused; the plan stays whole and the run says why."""
    def refused(*_args, **_kwargs):
        raise ValueError("[digital envelope routines] unsupported")
    monkeypatch.setattr(datadir.hashlib, broken, refused)
    source, target, plan = _pair(tmp_path)
    warnings = []
    kept, skipped, spared = drop_identical_copies(plan, source, target, warnings.append)
    if broken == "md5":             # not needed at all
        assert (skipped, warnings) == (1, [])
        return
    assert kept.actions == plan.actions and (skipped, spared) == (0, 0)
    assert len(warnings) == 1 and "could not checksum" in warnings[0], warnings
