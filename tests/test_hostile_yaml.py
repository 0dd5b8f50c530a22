"""Hostile inputs, YAML structure: duplicate keys, aliases, nesting, tags, documents, floods of keys.

Each case is refused with the file (and line, where YAML gives one) named, or loads correctly;
nothing recurses 100,000 deep, expands a billion values or prints megabytes.
"""

from __future__ import annotations

import pytest
import yaml

from simulator import ScenarioError, load_scenario
from simulator.scenario.loader import MAX_DEPTH, MAX_PROBLEMS
from tests.helpers import base_scenario
from tests.hostile import assert_clean_error, deadline, validate, write_scenario

VALID = yaml.safe_dump(base_scenario(), sort_keys=False)


def _laughs(levels: int = 9, merge: bool = False) -> str:
    """The "billion laughs": each level repeats the one below nine times (as list items or as `<<` merges)."""
    lines = ["l0: &l0 {a: 1, b: 2, c: 3, d: 4, e: 5, f: 6, g: 7, h: 8, i: 9}" if merge else "l0: &l0 [" + ", ".join(["lol"] * 9) + "]"]
    for level in range(1, levels + 1):
        below = ", ".join([f"*l{level - 1}"] * 9)
        lines.append(f"l{level}: &l{level} {{<<: [{below}], k{level}: 1}}" if merge else f"l{level}: &l{level} [{below}]")
    return "\n".join(lines) + "\n" + VALID


def _nested(depth: int, flow: bool = True) -> str:
    """A scenario with ``extra`` holding lists (flow style) or mappings (block style) ``depth`` deep."""
    if flow:
        return "name: x\nextra: " + "[" * depth + "]" * depth + "\n"
    return "name: x\nextra:\n" + "".join("  " * level + "a:\n" for level in range(1, depth)) + "  " * depth + "a: 1\n"


def _with_anchors() -> str:
    """A valid scenario sharing its service model through an anchor and a merge key (legitimate YAML)."""
    return VALID.replace("nodes:\n", "x-service: &svc {distribution: deterministic, value_ms: 5}\nnodes:\n").replace(
        "  service:\n    distribution: scipy\n    name: expon\n    params:\n      scale: 10.0\n", "  service: {<<: *svc, value_ms: 4}\n"
    )


# (id, file text, words the error must contain; None: the file is valid)
CASES = [
    ("duplicate-top-level-key", VALID + "name: second\n", ["duplicate key 'name'", "first given at line 1"]),
    ("duplicate-nested-key", VALID.replace("  workers: 1\n", "  workers: 1\n  workers: 64\n"), ["duplicate key 'workers'", "line"]),
    ("duplicate-in-flow-mapping", VALID + "router: {policy: random, policy: jsq}\n", ["duplicate key 'policy'"]),
    ("duplicate-quoted-and-plain", VALID + '"name": again\n', ["duplicate key 'name'"]),
    ("duplicate-in-list-item", VALID.replace("  - name: a\n", "  - name: a\n    name: b\n"), ["duplicate key 'name'"]),
    ("duplicate-deep-in-params", VALID.replace("      scale: 10.0\n", "      scale: 10.0\n      scale: 1.0\n"), ["duplicate key 'scale'"]),
    ("anchors-and-merge-keys", _with_anchors(), ["x-service: unknown key"]),
    ("billion-laughs", _laughs(), ["more than", "values", "aliases"]),
    ("merge-key-bomb", _laughs(merge=True), ["more than", "values"]),
    ("recursive-alias", "name: &a [*a]\n", ["refers to a value that contains it"]),
    ("undefined-alias", VALID + "description: *nowhere\n", ["not valid YAML", "undefined alias"]),
    ("deep-flow-sequence-100000", _nested(100_000), ["nest"]),  # libyaml's own limit (1000) may answer first
    ("deep-flow-mapping-100000", "name: x\nextra: " + "{a: " * 100_000 + "1" + "}" * 100_000 + "\n", ["nest"]),
    ("deep-flow-sequence-65", _nested(MAX_DEPTH + 1), ["nested more than 64 deep"]),
    ("deep-block-mapping-70", _nested(MAX_DEPTH + 6, flow=False), ["nested more than 64 deep"]),
    ("deep-but-allowed-60", _nested(60), ["extra: unknown key"]),
    ("top-level-list", "- name: x\n- nodes: []\n", ["must be a mapping", "not list"]),
    ("top-level-string", "just some words\n", ["must be a mapping", "not str"]),
    ("top-level-number", "42\n", ["must be a mapping", "not int"]),
    ("two-documents", VALID + "---\n" + VALID, ["not valid YAML", "document"]),
    ("python-object-tag", VALID + 'description: !!python/object/apply:os.system ["echo pwned"]\n', ["not valid YAML", "constructor"]),
    ("custom-tag", VALID + "description: !secret hunter2\n", ["not valid YAML", "!secret"]),
    ("binary-tag", VALID.replace("name: test", "name: !!binary aGVsbG8="), None),  # the bytes b"hello" are read as text
    ("set-tag", VALID.replace("name: test", "name: !!set {a, b}"), ["name"]),
    ("timestamp-as-name", VALID.replace("name: test", "name: 2024-01-01"), ["name", "string"]),
    ("impossible-date", VALID + "description: 2001-13-45\n", ["a value cannot be read", "month"]),
    ("unhashable-key", VALID + "? [a, b]\n: 1\n", ["not valid YAML"]),
    ("integer-key", VALID + "1: one\n", ["Keys should be strings"]),
    ("null-key", VALID + "~: nothing\n", ["Keys should be strings"]),
    ("merge-of-a-scalar", VALID + "<<: 5\n", ["not valid YAML"]),
    ("5000-digit-integer", VALID.replace("workers: 1", "workers: " + "9" * 5000), ["a value cannot be read"]),
    ("unclosed-flow", "name: x\nworkload: {arrival: [\n", ["not valid YAML", "line"]),
    ("json-trailing-comma", '{"name": "x",}', ["workload: required field is missing"]),
]


@pytest.mark.parametrize(("text", "needles"), [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_yaml_structure(tmp_path, text, needles):
    path = write_scenario(tmp_path, text)
    result = validate(path, seconds=20)
    if needles is None:
        assert result.exit_code == 0, result.stderr
    else:
        assert_clean_error(result, str(path), *needles)


@pytest.mark.parametrize("keys", [5_000, 100_000], ids=["5000-unknown-keys", "100000-unknown-keys"])
def test_a_flood_of_unknown_keys_prints_a_bounded_message(tmp_path, keys):
    path = write_scenario(tmp_path, VALID + "".join(f"junk{index}: {index}\n" for index in range(keys)))
    with deadline(30), pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    message = str(caught.value)
    assert len(message) < 10_000 and str(path) in message
    assert "more than" in message or (f"… and {keys - MAX_PROBLEMS} more" in message)


@pytest.mark.parametrize("where", ["key", "value"])
def test_a_megabyte_key_or_value_is_quoted_short(tmp_path, where):
    huge = "x" * 1_000_000
    text = VALID + (f"{huge}: 1\n" if where == "key" else f"description: [{huge}]\n")
    with pytest.raises(ScenarioError) as caught:
        load_scenario(write_scenario(tmp_path, text))
    assert len(str(caught.value)) < 2_000


def test_a_megabyte_name_is_refused_and_shown_short(tmp_path):
    """Names are capped where they are validated (they reach tables, plot titles and reports)."""
    path = write_scenario(tmp_path, VALID.replace("name: test", "name: " + "n" * 1_000_000))
    result = validate(path)
    assert result.exit_code == 2 and "name: String should have at most 200 characters" in result.stderr
    assert len(result.stderr) < 2_000
