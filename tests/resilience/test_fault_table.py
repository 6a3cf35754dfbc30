"""docs/faults.md is the rendering of the fault catalog, and every test it names exists."""

import ast

from resilience.catalog import FAULTS, render
from support.env import REPO


def test_docs_match_the_catalog():
    assert (REPO / "docs" / "faults.md").read_text() == render(), \
        "regenerate: python tests/resilience/catalog.py > docs/faults.md"


def test_every_named_test_exists():
    for _fault, _how, _outcome, test in FAULTS:
        path, _, name = test.partition("::")
        tree = ast.parse((REPO / "tests" / path).read_text())
        names = {node.name for node in ast.walk(tree)
                 if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}
        assert name in names, test
