"""The options the modules share are defined once: the doc fragments state the argument
spec's defaults, which are the engine's constants, which RewindOptions, the CLI and the
role's own variables use too; every module of the action group takes the options
module_defaults may set for it; no module restates a shared option."""

import ast
from pathlib import Path

import yaml

from ansible_collections.pgops.rewind.plugins.doc_fragments import connection, rejoin
from ansible_collections.pgops.rewind.plugins.module_utils import cli
from ansible_collections.pgops.rewind.plugins.module_utils.module_support import (
    TARGET_PREFIX, argument_defaults, connection_argument_spec, login_argument_spec,
    rejoin_argument_spec)
from ansible_collections.pgops.rewind.plugins.module_utils.options import RewindOptions
from ansible_collections.pgops.rewind.plugins.module_utils.plan.assessment import (
    DEFAULT_ALLOW_OLDER_SOURCE, DEFAULT_CLONE_WHEN, DEFAULT_FALLBACK)
from ansible_collections.pgops.rewind.plugins.module_utils.source.connection import (
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_SOURCE_TIMEOUT)

COLLECTION = Path(__file__).resolve().parents[3]
ENGINE_DEFAULTS = {"connect_timeout": DEFAULT_CONNECT_TIMEOUT,
                   "source_timeout": DEFAULT_SOURCE_TIMEOUT,
                   "fallback": DEFAULT_FALLBACK, "clone_when": DEFAULT_CLONE_WHEN,
                   "allow_older_source": DEFAULT_ALLOW_OLDER_SOURCE}
FRAGMENTS = {"pgops.rewind.connection": connection, "pgops.rewind.rejoin": rejoin}
# What a module may add to a shared option's documentation (never its text or default).
OVERRIDES = {"version_added", "required", "aliases"}


def _options(fragment) -> dict:
    return yaml.safe_load(fragment.ModuleDocFragment.DOCUMENTATION)["options"]


def _module_doc(name: str) -> dict:
    tree = ast.parse((COLLECTION / "plugins" / "modules" / (name + ".py")).read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and node.targets[0].id == "DOCUMENTATION":
            return yaml.safe_load(node.value.value)
    raise AssertionError("%s has no DOCUMENTATION" % name)


def _group_modules() -> list:
    runtime = yaml.safe_load((COLLECTION / "meta" / "runtime.yml").read_text())
    return runtime["action_groups"]["all"]


def _aliases(option: dict) -> list:
    return sorted(option.get("aliases", []))


def test_documented_defaults_are_the_argument_specs():
    target = yaml.safe_load(connection.ModuleDocFragment.TARGET)["options"]
    assert sorted(target) == sorted(login_argument_spec(TARGET_PREFIX))
    for name, option in login_argument_spec(TARGET_PREFIX).items():
        assert (target[name]["type"], target[name].get("choices"), _aliases(target[name])) == \
            (option["type"], option.get("choices"), _aliases(option)), name
    for fragment, spec in ((connection, connection_argument_spec()),
                           (rejoin, {k: v for k, v in rejoin_argument_spec().items()
                                     if k not in connection_argument_spec()})):
        documented = _options(fragment)
        assert sorted(documented) == sorted(spec), fragment.__name__
        for name, option in spec.items():
            shown = documented[name]
            assert (shown["type"], shown.get("default"), shown.get("choices"),
                    _aliases(shown)) == \
                (option["type"], option.get("default"), option.get("choices"),
                 _aliases(option)), name
    assert argument_defaults(rejoin_argument_spec()) == ENGINE_DEFAULTS


def test_secrets_are_no_log():
    spec = rejoin_argument_spec()
    assert {name for name, option in spec.items() if option.get("no_log")} == \
        {"source_server", "login_password", "restore_command"}
    assert {name for name, option in login_argument_spec(TARGET_PREFIX).items()
            if option.get("no_log")} == {"target_login_password"}


def test_the_engine_and_the_cli_default_alike(monkeypatch):
    options = RewindOptions(target_pgdata="/d")
    assert {name: getattr(options, name) for name in ENGINE_DEFAULTS} == ENGINE_DEFAULTS
    seen = {}
    monkeypatch.setattr(cli, "open_source", lambda server, pgdata, **kw: seen.update(kw))
    monkeypatch.setattr(cli, "inspect_and_assess",
                        lambda pgdata, source, server, **kw: seen.update(kw) or {})
    cli.execute("info", {"target_pgdata": "/d", "source_server": "host=db2",
                         "source_timeout": None})
    assert {name: seen[name] for name in ENGINE_DEFAULTS} == ENGINE_DEFAULTS


def test_the_roles_own_defaults_agree():
    role = COLLECTION / "roles" / "pg_rewind"
    defaults = yaml.safe_load((role / "defaults" / "main.yml").read_text())
    specs = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())
    options = specs["argument_specs"]["main"]["options"]
    for name, value in ENGINE_DEFAULTS.items():
        assert defaults["pg_rewind_" + name] == value, name
        assert options["pg_rewind_" + name]["default"] == value, name


def test_modules_extend_the_fragments_and_restate_nothing():
    shared = {name: set(_options(fragment)) for name, fragment in FRAGMENTS.items()}
    expected = {"pg_rewind": set(FRAGMENTS),
                "pg_rewind_info": set(FRAGMENTS) | {"pgops.rewind.connection.target"},
                "pg_physical_slot": {"pgops.rewind.connection"}}
    modules = sorted(p.stem for p in (COLLECTION / "plugins" / "modules").glob("*.py"))
    assert modules == sorted(expected)
    for module, fragments in expected.items():
        doc = _module_doc(module)
        assert set(doc["extends_documentation_fragment"]) == fragments, module
        for fragment in fragments & set(FRAGMENTS):
            for option in shared[fragment] & set(doc["options"]):
                assert set(doc["options"][option]) <= OVERRIDES, (module, option)


def test_every_module_of_the_group_takes_what_module_defaults_sets():
    """module_defaults hands a group's values to every module in it, unfiltered: a module
    that lacked one would fail with 'Unsupported parameters'."""
    group = _group_modules()
    assert sorted(group) == sorted(p.stem for p in (COLLECTION / "plugins" / "modules").glob("*.py"))
    for module in group:
        assert "pgops.rewind.connection" in _module_doc(module)["extends_documentation_fragment"]
