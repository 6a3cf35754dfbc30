"""The path choice and the space check: pure decisions over numbers."""

import pytest

from ansible_collections.pgops.rewind.plugins.module_utils.plan import assessment as a


def test_choose_path():
    assert a.choose_path(False, None, 0, 0, 100, "impossible").path == a.PATH_NONE
    assert a.choose_path(True, None, 10, 20, 100, "impossible").path == a.PATH_REWIND
    assert a.choose_path(True, None, 10, 200, 100, "impossible").path == a.PATH_REWIND
    assert a.choose_path(True, None, 10, 200, 100, "cheaper").path == a.PATH_CLONE
    assert a.choose_path(True, None, 10, 20, 100, "cheaper").path == a.PATH_REWIND
    choice = a.choose_path(False, "WAL gone", 0, 0, 100, "impossible")
    assert choice.path == a.PATH_CLONE and "WAL gone" in choice.reason
    assert (choice.rewind_bytes, choice.wal_bytes, choice.clone_bytes) == (0, 0, 100)


def test_a_choice_is_a_value():
    choice = a.run_path(True, "fail", "impossible")
    assert choice == a.PathChoice(a.PATH_REWIND, choice.reason)
    with pytest.raises(AttributeError):
        choice.path = a.PATH_CLONE


# (rewind_required, fallback, clone_when, costs) -> path. Costs are (bytes the rewind
# fetches, WAL bytes it reads, bytes a clone copies); None: not known yet (before the
# WAL scan).
DEARER = (10, 200, 100)     # the rewind costs 210, a clone 100
CHEAPER = (10, 20, 100)     # the rewind costs 30
RUN_PATHS = [
    (False, "clone", "always", None, a.PATH_NONE),
    (False, "fail", "impossible", None, a.PATH_NONE),
    (True, "fail", "impossible", None, a.PATH_REWIND),
    (True, "fail", "impossible", DEARER, a.PATH_REWIND),
    (True, "fail", "cheaper", DEARER, a.PATH_REWIND),       # no clone without the fallback
    (True, "fail", "always", None, a.PATH_REWIND),
    (True, "clone", "impossible", None, a.PATH_REWIND),
    (True, "clone", "impossible", DEARER, a.PATH_REWIND),
    (True, "clone", "cheaper", None, a.PATH_REWIND),        # costs are known after the scan
    (True, "clone", "cheaper", CHEAPER, a.PATH_REWIND),
    (True, "clone", "cheaper", DEARER, a.PATH_CLONE),
    (True, "clone", "always", None, a.PATH_CLONE),          # decided before the scan
    (True, "clone", "always", CHEAPER, a.PATH_CLONE),
]


@pytest.mark.parametrize("required, fallback, clone_when, costs, path", RUN_PATHS)
def test_run_path(required, fallback, clone_when, costs, path):
    assert a.run_path(required, fallback, clone_when, costs).path == path


def test_run_path_reasons():
    assert a.run_path(True, "clone", "always").reason == "clone_when: always"
    cheaper = a.run_path(True, "clone", "cheaper", DEARER)
    assert cheaper.reason.startswith("a clone (100 bytes) costs less than the rewind (10 bytes")
    assert cheaper.clone_bytes == 100
    assert a.run_path(False, "clone", "always").reason == "no rewind is needed"


@pytest.mark.parametrize("code", sorted(a.REWIND_IMPOSSIBLE))
def test_a_refusal_that_rules_out_only_the_rewind_is_a_clone_when_allowed(code):
    choice = a.clone_instead(code, "segment 42 is gone", "clone")
    assert choice.path == a.PATH_CLONE
    assert choice.reason == "%s (segment 42 is gone)" % a.REWIND_IMPOSSIBLE[code]
    assert a.clone_instead(code, "segment 42 is gone", "fail") is None


@pytest.mark.parametrize("code", ["source_no_fpw", "different_system", "target_ahead", "timeout"])
def test_any_other_refusal_stands(code):
    assert a.clone_instead(code, "no", "clone") is None


def test_space_needed_keeps_a_margin():
    need = 1 << 30
    margin = int(need * a.SPACE_MARGIN_RATIO) + a.SPACE_MARGIN_BYTES
    ok, = a.space_needed({"/data": need}, {"/data": need + margin})
    short, = a.space_needed({"/data": need}, {"/data": need + margin - 1})
    assert ok.ok and not short.ok and "/data" in short.message
    assert [c.ok for c in a.space_needed({"/a": 1, "/b": 1}, {"/a": 1 << 30})] == [True, False]
