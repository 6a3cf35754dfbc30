"""The engine's layout is its design: packages by concept in a dependency order, no
import cycles, a thin top level. Read from the source (AST), so a lazy import inside a
function counts as much as one at the top of a file."""

from __future__ import annotations

import ast
import re

from support.env import REPO

ENGINE = REPO / "plugins" / "module_utils"
# Lowest first: a package may import itself and what stands before it, never after.
# errors.py is the catalogue every layer raises from; the top level (orchestrator, CLI,
# options, module support) may import everything.
ORDER = ("errors", "runtime", "pg", "wal", "source", "target", "standby", "plan", "apply",
         "top")
TOP_MODULES = {"errors", "options", "module_support", "rewind", "cli"}


def _layer(module: str) -> str:
    """The layer of a dotted engine module name ('pg.lsn', 'rewind', 'errors')."""
    first = module.split(".")[0]
    if first == "errors":
        return "errors"
    return first if first in ORDER else "top"


def _engine_imports():
    """{module: {imported engine module}} for every engine file (relative imports only:
    the engine never imports itself absolutely)."""
    graph = {}
    for path in ENGINE.rglob("*.py"):
        rel = path.relative_to(ENGINE).with_suffix("")
        parts = list(rel.parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        name = ".".join(parts) or "__init__"
        package = parts if is_package else parts[:-1]
        imported = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = package[:len(package) - (node.level - 1)]
                target = base + (node.module.split(".") if node.module else [])
                if node.module:
                    imported.add(".".join(target))
                else:               # from . import x: x is a module of that package
                    imported.update(".".join(target + [a.name]) for a in node.names)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) \
                    else [node.module or ""]
                assert not any("module_utils" in n for n in names), \
                    "%s imports the engine absolutely: %s" % (name, names)
        graph[name] = imported
    return graph


def test_every_package_imports_only_the_packages_below_it():
    wrong = []
    for module, imported in _engine_imports().items():
        if module == "__init__":
            continue
        mine = ORDER.index(_layer(module))
        for other in imported:
            if ORDER.index(_layer(other)) > mine:
                wrong.append("%s (%s) imports %s (%s)"
                             % (module, _layer(module), other, _layer(other)))
    assert not wrong, "imports against the layer order %s:\n%s" % (ORDER, "\n".join(sorted(wrong)))


def test_no_import_cycle_anywhere():
    graph = _engine_imports()
    # a package's __init__ is imported with any of its modules: count it as a module
    modules = set(graph)
    state, cycles = {}, []

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if nxt not in modules:
                continue
            if state.get(nxt) == "open":
                cycles.append(" -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for module in sorted(modules):
        if module not in state:
            visit(module, [module])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_packages_are_packages_and_the_top_level_stays_thin():
    packages = {p.name for p in ENGINE.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert packages == set(ORDER) - {"errors", "top"}
    for package in packages:
        assert (ENGINE / package / "__init__.py").is_file(), package
    top = {p.stem for p in ENGINE.glob("*.py")} - {"__init__"}
    assert top == TOP_MODULES


def test_the_design_document_shows_the_package_map_in_this_order():
    """docs/design.md names every package, lowest first, as the test enforces it."""
    text = (REPO / "docs" / "design.md").read_text()
    section = text.split("## Package map", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(r"^\| `([a-z_]+)(?:/|\.py)`", section, flags=re.M)
    assert tuple(listed) == ORDER[:-1], listed
