"""Every error the engine can raise has a code in the catalog, with a cause and a remedy."""

import re

from pathlib import Path

from ansible_collections.pgops.rewind.plugins.module_utils import errors

REPO = Path(errors.__file__).resolve().parents[2]


def _codes_in_source():
    codes = set()
    for path in (REPO / "plugins").rglob("*.py"):
        text = path.read_text()
        codes.update(re.findall(r'\bcode="([a-z_]+)"', text))
        codes.update(re.findall(r'error_code="([a-z_]+)"', text))
        codes.update(re.findall(r'^\s+code = "([a-z_]+)"', text, re.M))
    return codes


def test_every_code_is_in_the_catalog_with_a_remedy():
    codes = _codes_in_source()
    assert len(codes) > 40
    missing = codes - set(errors.CATALOG) - {"rewind_error"}
    assert not missing, "add these to errors.CATALOG: %s" % sorted(missing)
    for code, (cause, remedy) in errors.CATALOG.items():
        assert cause.endswith(".") and remedy.endswith("."), code


def test_default_hint_comes_from_the_catalog():
    err = errors.RefusedError("the target server is running.", code="target_running")
    assert err.hint == errors.CATALOG["target_running"][1]
    assert str(err).startswith("the target server is running. Stop it first")
    assert errors.MissingWalError("x").hint == errors.CATALOG["wal_missing"][1]
