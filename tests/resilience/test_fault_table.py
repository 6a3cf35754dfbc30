"""Every test the fault catalog (docs/faults.md) names exists; that the document is
current is checked with the other generated docs (tests/unit/test_docs.py)."""

import ast

from resilience.catalog import FAULTS
from support.env import REPO


def test_every_named_test_exists():
    for _fault, _how, _outcome, test in FAULTS:
        path, _unused, name = test.partition("::")
        tree = ast.parse((REPO / "tests" / path).read_text())
        names = {node.name for node in ast.walk(tree)
                 if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}
        assert name in names, test
