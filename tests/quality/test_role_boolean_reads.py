"""Every boolean of the role is read through `| bool` (issue 19, item 7).

AWX surveys (and `-e key=value`) hand booleans as strings: "false" is a true value to
Jinja, and extra vars outrank any set_fact, so a string cannot be normalised once into
the same name. The rule is therefore: wherever the role or the shipped playbook reads a
boolean variable of meta/argument_specs.yml, it reads `name | bool`. The variables are
enumerated from the argument spec, so a new one cannot be forgotten; the playbook test
tests/role/test_role_booleans.py checks the behaviour with strings."""

import re

import yaml

from support.env import REPO

ROLE = REPO / "roles" / "pg_rewind"
NOT_READS = {ROLE / "defaults" / "main.yml", ROLE / "meta" / "argument_specs.yml"}


def role_booleans() -> list:
    specs = yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    return sorted({name for spec in specs.values() for name, option in spec["options"].items()
                   if option.get("type") == "bool"})


def _readers():
    files = [p for p in ROLE.rglob("*") if p.is_file() and p.suffix in (".yml", ".yaml", ".j2")
             and p not in NOT_READS]
    return files + sorted((REPO / "playbooks").glob("*.yml"))


def test_the_argument_spec_has_the_known_booleans():
    names = role_booleans()
    assert {"pg_rewind_keep_slot", "pg_rewind_reserve_wal", "pg_rewind_start"} <= set(names)
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    assert all(isinstance(defaults[name], bool) for name in names), names


def test_every_read_of_a_boolean_goes_through_the_bool_filter():
    bare = []
    reads = {name: 0 for name in role_booleans()}
    for path in _readers():
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if line.lstrip().startswith("#"):
                continue
            for name in reads:
                for match in re.finditer(r"\b%s\b(?!\s*:)" % name, line):
                    reads[name] += 1
                    if not re.match(r"\s*\|\s*bool\b", line[match.end():]):
                        bare.append("%s:%d: %s" % (path.relative_to(REPO), number, line.strip()))
    assert bare == [], "read these booleans as `name | bool`:\n" + "\n".join(bare)
    assert [name for name, count in reads.items() if count == 0] == [], \
        "a boolean of the argument spec the role never reads"
