"""The path choice and the space check: pure decisions over numbers."""

from ansible_collections.pgops.rewind.plugins.module_utils.plan import assessment as a


def test_choose_path():
    assert a.choose_path(False, None, 0, 0, 100, "impossible")[0] == a.PATH_NONE
    assert a.choose_path(True, None, 10, 20, 100, "impossible")[0] == a.PATH_REWIND
    assert a.choose_path(True, None, 10, 200, 100, "impossible")[0] == a.PATH_REWIND
    assert a.choose_path(True, None, 10, 200, 100, "cheaper")[0] == a.PATH_CLONE
    assert a.choose_path(True, None, 10, 20, 100, "cheaper")[0] == a.PATH_REWIND
    path, reason = a.choose_path(False, "WAL gone", 0, 0, 100, "impossible")
    assert path == a.PATH_CLONE and "WAL gone" in reason


def test_space_needed_keeps_a_margin():
    need = 1 << 30
    margin = int(need * a.SPACE_MARGIN_RATIO) + a.SPACE_MARGIN_BYTES
    ok, = a.space_needed({"/data": need}, {"/data": need + margin})
    short, = a.space_needed({"/data": need}, {"/data": need + margin - 1})
    assert ok.ok and not short.ok and "/data" in short.message
    assert [c.ok for c in a.space_needed({"/a": 1, "/b": 1}, {"/a": 1 << 30})] == [True, False]
