"""Write-back starts while the copy writes (target/writeback.py): every FLUSH_AFTER bytes
written to a file and when the copy leaves it, before the fsyncs, which stay."""

import os

from ansible_collections.pgops.rewind.plugins.module_utils.target import durability, writeback
from ansible_collections.pgops.rewind.plugins.module_utils.target.directory import TargetDirectory


def _events(log):
    with open(log) as handle:
        return [line.split(" ", 1) for line in handle.read().splitlines()]


def test_hints_while_writing_then_fsync(tmp_path, monkeypatch):
    pgdata = tmp_path / "pgdata"
    (pgdata / "base").mkdir(parents=True)
    log = str(tmp_path / "events")
    monkeypatch.setenv(durability.RECORD_ENV, log)
    target = TargetDirectory(str(pgdata))
    assert target.writeback.available, "sync_file_range should load on Linux"
    chunk = os.urandom(1 << 20)
    size = 2 * writeback.FLUSH_AFTER + (3 << 20)
    for offset in range(0, size, len(chunk)):
        target.write("base/big", offset, chunk)
    target.write("base/small", 0, b"x" * 8192)
    target.sync()
    events = _events(log)
    hints = [what for kind, what in events if kind == "writeback"]
    # Two while the big file was written, one when the copy left it, one for the small.
    assert hints == ["base/big", "base/big", "base/big", "base/small"], events
    fsyncs = [i for i, (kind, _what) in enumerate(events) if kind == "fsync"]
    last_hint = max(i for i, (kind, _what) in enumerate(events) if kind == "writeback")
    assert fsyncs and min(fsyncs) > last_hint
    assert any(what.endswith("/base/big") for kind, what in events if kind == "fsync")
    assert os.path.getsize(pgdata / "base" / "big") == size


def test_no_hints_without_sync(tmp_path, monkeypatch):
    """sync=False (tests, dry runs): nothing is made durable, nothing is hinted."""
    log = str(tmp_path / "events")
    monkeypatch.setenv(durability.RECORD_ENV, log)
    target = TargetDirectory(str(tmp_path), sync=False)
    assert not target.writeback.available
    target.write("f", 0, b"y" * (writeback.FLUSH_AFTER + 1))
    target.close()
    assert target.writeback.hints == 0
    assert not os.path.exists(log) or not [e for e in _events(log) if e[0] == "writeback"]
