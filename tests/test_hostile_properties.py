"""Hostile inputs, generated: hypothesis mutates valid scenarios, bundles and data files at random.

The property is the suite's contract: a clean error (a ``LatsimError``) or a sound result, never
another exception, and never longer than a deadline. Runs are derandomized (the same examples on
every run, so a failure is reproducible) and small (``max_examples``), to keep the suite fast.
"""

from __future__ import annotations

import copy
import json
import math
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator.errors import LatsimError
from simulator.formats.profile_bundle import FORMAT, FORMAT_VERSION, METADATA_FILE, load_bundle
from simulator.formats.samples import read_sample_column
from simulator.profiling.table import markdown_table
from simulator.runner.checks import check_stability
from simulator.runner.plan import plan_run
from simulator.scenario.loader import load_scenario, scenario_from_dict
from tests.helpers import base_scenario
from tests.hostile import deadline
from tests.hostile.bundle import METADATA, write_pristine

FAST = settings(max_examples=60, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Values a hostile or careless file holds: edge numbers, wrong types, policy names in the wrong place.
# Integers stay below 10**7 or far above 2**62: sizes in between would make the check allocate gigabytes
# before failing, which the lead's bounds (xfail cases in test_hostile_schema) are to refuse first.
EDGE_VALUES = [0, -1, 1, 2**63, -(2**63), 10**30, 0.0, -0.0, 1e308, -1e308, 1e-300, 5e-324, math.inf, -math.inf, math.nan,
               "", "poisson", "fifo", "all", "n", "a", True, False, None, [], {}]
SCALARS = (
    st.none() | st.booleans() | st.integers(-10**6, 10**7) | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12) | st.sampled_from(EDGE_VALUES)
)
VALUES = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=6
)
RICH_SCENARIO = base_scenario(
    workload={
        **base_scenario()["workload"],
        "keys": {"popularity": "zipf", "catalog_size": 1000, "exponent": 0.9},
    },
    cache={"policy": {"policy": "lru", "capacity_entries": 100}, "hit_latency": {"distribution": "deterministic", "value_ms": 0.2}},
    events=[{"type": "failure", "nodes": ["n"], "at_s": 5, "duration_s": 2}],
    router={"policy": "power_of_two"},
)


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key path (dict keys and list indices) inside plain data, the root excluded."""
    found = []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    for key, value in items:
        found.append((*prefix, key))
        found += _paths(value, (*prefix, key))
    return found


@st.composite
def mutated(draw: st.DrawFn, original: dict[str, Any]) -> dict[str, Any]:
    """``original`` with one to three random changes: a value replaced, a key removed, a key added."""
    data = copy.deepcopy(original)
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(data)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = data
        for step in path[:-1]:
            parent = parent[step]
        action = draw(st.sampled_from(["replace", "remove", "add"]))
        if action == "replace":
            parent[path[-1]] = draw(VALUES)
        elif action == "remove":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.text(max_size=10))] = draw(VALUES)
        else:
            parent.append(draw(VALUES))
    return data


@FAST
@given(mutated(RICH_SCENARIO))
def test_generated_scenarios_validate_cleanly(data):
    """What ``validate`` does (schema, then every check before a run) on a mutated scenario."""
    with deadline(10):
        try:
            check_stability(plan_run(scenario_from_dict(data, source="generated.yaml")))
        except LatsimError:
            pass


def _load_text(text: str | bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "scenario.yaml"
        path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass"))
        with deadline(10):
            try:
                load_scenario(path)
            except LatsimError:
                pass


@FAST
@given(st.text(max_size=300) | st.binary(max_size=300))
def test_generated_text_loads_cleanly(text):
    _load_text(text)


@FAST
@given(mutated(base_scenario()), st.sampled_from(["block", "flow", "json"]))
def test_generated_yaml_documents_load_cleanly(data, style):
    """Mutated scenarios written as YAML (block or flow style) or JSON, then loaded from the file."""
    if style == "json":
        text = json.dumps(data, default=str)
    else:
        text = yaml.safe_dump(data, default_flow_style=style == "flow", allow_unicode=True)
    _load_text(text)


CELLS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr), st.integers().map(str), st.text(max_size=8),
    st.sampled_from(["", "nan", "inf", "1e400", "True", '"', ",", "\t", "1,2", "\\N"]),
)


@FAST
@given(st.lists(st.lists(CELLS, min_size=1, max_size=3), max_size=8), st.booleans())
def test_generated_csv_files_read_cleanly(rows, header):
    lines = (["x,y,z"] if header else []) + [",".join(row) for row in rows]
    _read_data("\n".join(lines).encode("utf-8", "surrogatepass"), "data.csv")


@FAST
@given(st.binary(max_size=400), st.sampled_from(["data.csv", "data.parquet"]))
def test_generated_binary_data_files_read_cleanly(content, name):
    _read_data(content, name)


def _read_data(content: bytes, name: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(content)
        with deadline(10):
            try:
                values = read_sample_column(path, None, "service.empirical")
            except LatsimError:
                return
        assert values.dtype == float and values.size > 0 and np.all(np.isfinite(values))


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    return write_pristine(tmp_path_factory.mktemp("bundles") / "bundle")


@FAST
@given(metadata=mutated({**METADATA, "format": FORMAT, "format_version": FORMAT_VERSION}))
def test_generated_bundle_metadata_reads_cleanly(pristine, metadata):
    """Both readers of a bundle, the loader (run) and the Markdown table (profile --table), on mutated metadata."""
    metadata["samples"] = json.loads((pristine / METADATA_FILE).read_text())["samples"]  # the samples hash stays right
    with tempfile.TemporaryDirectory() as folder:
        bundle = Path(folder) / "bundle"
        shutil.copytree(pristine, bundle)
        (bundle / METADATA_FILE).write_text(json.dumps(metadata, default=str))
        with deadline(10):
            try:
                markdown_table(load_bundle(bundle))
            except LatsimError:
                pass
