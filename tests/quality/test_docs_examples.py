"""What the operator documents point to exists: every relative link of the README and
the docs leads to a file and, with an anchor, to one of its headings; the AWX survey in
the guide asks only for role variables, with the types the role declares."""

from __future__ import annotations

import json
import re

import yaml

from support.env import REPO

DOCUMENTS = ["README.md", "docs/guide.md", "docs/troubleshooting-by-symptom.md",
             "docs/troubleshooting.md"]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _anchors(path) -> set:
    """GitHub's heading anchors: lower case, punctuation but - and _ dropped, spaces as -."""
    anchors = set()
    in_code = False
    for line in path.read_text().splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return anchors


def test_relative_links_and_anchors_resolve():
    broken = []
    for name in DOCUMENTS:
        source = REPO / name
        for target in LINK.findall(source.read_text()):
            if re.match(r"[a-z]+:", target):
                continue                                # http(s), mailto
            path, anchor = (target.split("#", 1) + [""])[:2]
            dest = (source.parent / path).resolve() if path else source
            if not dest.exists():
                broken.append("%s: %s (no such file)" % (name, target))
            elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
                broken.append("%s: %s (no such heading)" % (name, target))
    assert broken == [], "\n".join(broken)


def _survey() -> dict:
    text = (REPO / "docs" / "guide.md").read_text()
    match = re.search(r"^<!-- docs-test: awx-survey -->\n```json\n(.*?)^```$", text, re.S | re.M)
    assert match, "the guide has no survey block"
    return json.loads(match.group(1))


SURVEY_TYPES = {"text": ("str", "path"), "password": ("str",), "integer": ("int",),
                "float": ("float",), "multiplechoice": ("str",)}


def test_awx_survey_asks_for_role_variables_with_their_types():
    specs = yaml.safe_load((REPO / "roles" / "pg_rewind" / "meta" / "argument_specs.yml")
                           .read_text())["argument_specs"]["main"]["options"]
    survey = _survey()
    assert survey["name"] and survey["description"] and survey["spec"]
    for question in survey["spec"]:
        name = question["variable"]
        assert name in specs, "%s is not a role variable" % name
        spec = specs[name]
        assert question["type"] in SURVEY_TYPES, question
        assert spec.get("type", "str") in SURVEY_TYPES[question["type"]], (name, spec)
        assert question["required"] and "default" in question, \
            "%s: a blank optional answer would override the inventory" % name
        if question["type"] == "multiplechoice":
            choices = question["choices"].split("\n")
            assert set(choices) <= set(spec["choices"]), (name, choices)
            assert question["default"] in choices
        if question["type"] == "integer":
            assert question["min"] <= question["default"] <= question["max"], question
            assert question["min"] <= spec["default"] <= question["max"], (name, spec)
