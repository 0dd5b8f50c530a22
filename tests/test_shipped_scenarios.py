"""Every shipped scenario validates and runs; the schema command describes them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from simulator import load_scenario, run

SCENARIOS = sorted((Path(__file__).parent.parent / "scenarios").glob("*.yaml"))


def test_there_are_scenarios():
    assert len(SCENARIOS) >= 5


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_shipped_scenario_runs(path):
    loaded = load_scenario(path)
    summary = run(loaded, requests=3000, replications=2).summary
    everything = summary["classes"]["all"]
    assert everything["finished"] == 2 * 3000
    assert everything["completed"] + sum(everything["dropped"].values()) == everything["finished"]
    assert everything["latency_ms"]["p99"]["estimate"] > 0


def test_schema_command_lists_every_policy():
    completed = subprocess.run([sys.executable, "-m", "simulator", "schema"], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0
    schema = json.loads(completed.stdout)
    assert {"name", "workload", "nodes", "run", "router"} <= set(schema["properties"])
    text = completed.stdout
    for name in ("poisson", "mmpp", "piecewise", "diurnal", "trace", "deterministic", "scipy", "empirical", "edf", "power_of_two"):
        assert f'"{name}"' in text
