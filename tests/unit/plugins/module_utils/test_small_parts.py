"""LSNs and segment names, CRC-32C, the progress file, the command line."""

import json

import pytest

from ansible_collections.pgops.rewind.plugins.module_utils import cli

from ansible_collections.pgops.rewind.plugins.module_utils.pg import crc32c
from ansible_collections.pgops.rewind.plugins.module_utils.errors import RewindError
from ansible_collections.pgops.rewind.plugins.module_utils.pg.lsn import (
    first_record_position, format_lsn, last_record_end, parse_lsn, parse_segment_name,
    segment_name)
from ansible_collections.pgops.rewind.plugins.module_utils.runtime.progress import Progress, default_path


def test_lsn_text_and_segment_names():
    assert format_lsn(0x3009608) == "0/3009608" and format_lsn(0x1_0000_0028) == "1/28"
    assert parse_lsn("16/B374D848") == 0x16B374D848
    with pytest.raises(RewindError):
        parse_lsn("nonsense")
    assert segment_name(1, 3, 16 << 20) == "000000010000000000000003"
    assert segment_name(2, 0x1FF, 16 << 20) == "0000000200000001000000FF"
    assert parse_segment_name("0000000200000001000000FF", 16 << 20) == (2, 0x1FF)
    assert parse_segment_name("00000002.history", 16 << 20) is None
    assert first_record_position(16 << 20, 16 << 20) == (16 << 20) + 40
    assert first_record_position((16 << 20) + 8192, 16 << 20) == (16 << 20) + 8192 + 24


def test_last_record_end_is_never_inside_a_page_header():
    seg = 16 << 20
    assert last_record_end(seg + 40, seg) == seg               # a segment's long header
    assert last_record_end(seg + 8192 + 24, seg) == seg + 8192  # a page's short header
    assert last_record_end(seg + 24, seg) == seg + 24          # inside the long header's page
    assert last_record_end(seg + 8192 + 40, seg) == seg + 8192 + 40
    assert last_record_end(seg + 1000, seg) == seg + 1000


def test_crc32c_matches_the_standard_and_the_fallback():
    assert crc32c.crc32c(b"123456789") == 0xE3069283
    data = bytes(range(256)) * 40
    assert crc32c.crc32c_python(data) == crc32c.crc32c(data)
    assert crc32c.crc32c(data[100:], crc32c.crc32c(data[:100])) == crc32c.crc32c(data)


def test_progress_file(tmp_path):
    path = tmp_path / "progress.json"
    progress = Progress(str(path), interval=0)
    progress.phase("copy", 1000)
    progress.advance(250)
    state = json.loads(path.read_text())
    assert (state["phase"], state["done"], state["total"], state["percent"]) == ("copy", 250, 1000, 25.0)
    progress.end()
    assert json.loads(path.read_text())["phase"] == "done"
    overhead = progress.overhead()
    assert overhead["updates"] == 1 and overhead["seconds"] > 0


def test_progress_file_written_at_most_once_per_interval(tmp_path, monkeypatch):
    path = tmp_path / "progress.json"
    progress = Progress(str(path), interval=3600)
    progress.phase("copy", 1000)
    writes = []
    monkeypatch.setattr(progress, "_write", lambda: writes.append(progress.done))
    for _unused in range(100):
        progress.advance(10)
    assert writes == [] and progress.done == 1000 and progress.overhead()["updates"] == 100
    assert default_path("/var/lib/postgresql/16/main").endswith(
        "pgops_rewind-progress-var_lib_postgresql_16_main.json")


def test_command_line_takes_module_parameters(monkeypatch):
    monkeypatch.setenv("SRC", "host=db2 password=secret")
    command, params = cli.parameters(["rewind", "--target-pgdata", "/d", "--source-server-env",
                                      "SRC", "--no-sync", "--keep-files", "a,b", "--check"])
    assert command == "rewind"
    assert params == {"target_pgdata": "/d", "source_server": "host=db2 password=secret",
                      "sync": False, "keep_files": ["a", "b"], "check_mode": True}
    with pytest.raises(RewindError) as err:
        cli.execute("rewind", {"target_pgdata": "/d", "bogus": 1})
    assert err.value.code == "bad_parameters"
