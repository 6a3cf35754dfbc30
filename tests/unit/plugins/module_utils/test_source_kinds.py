"""What each kind of source can do is declared by its type (issue 18, item 3): a running
server is a ServerSource (queries, WAL reservation), a stopped data directory is not,
and running_server() is the one place that tells them apart."""

from ansible_collections.pgops.rewind.plugins.module_utils.source.interface import (
    ServerSource, Source, running_server)
from ansible_collections.pgops.rewind.plugins.module_utils.source.libpq import LibpqSource
from ansible_collections.pgops.rewind.plugins.module_utils.source.local import LocalSource


def test_only_the_running_server_is_a_server_source(tmp_path):
    assert issubclass(LibpqSource, ServerSource) and issubclass(ServerSource, Source)
    assert not issubclass(LocalSource, ServerSource)
    assert running_server(LocalSource(str(tmp_path))) is None
    assert running_server(None) is None
    server = LibpqSource.__new__(LibpqSource)      # no connection needed to tell its kind
    assert running_server(server) is server


def test_what_a_server_source_adds_is_declared_and_implemented():
    added = {"query", "reserve_wal_temporarily", "release_wal"}
    assert added <= set(vars(ServerSource)) and not added & set(vars(Source))
    assert all(getattr(LibpqSource, name) is not getattr(ServerSource, name) for name in added)
    assert not hasattr(Source, "is_running")


def test_only_the_local_directory_checksums_files_itself(tmp_path):
    (tmp_path / "f").write_bytes(b"x")
    digests = LocalSource(str(tmp_path)).digests([("f", 1)])
    assert digests == {"f": "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"}
