"""Every shipped scenario validates and runs; the schema command describes them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from simulator import load_scenario, run

SCENARIOS = sorted((Path(__file__).parent.parent / "scenarios").glob("*.yaml"))


def test_there_are_scenarios():
    assert len(SCENARIOS) >= 5


def _unprofiled(path: Path) -> str | None:
    """Why ``path`` cannot run yet: a profile family its nodes read that their bundle does not hold."""
    for node in yaml.safe_load(path.read_text())["nodes"]:
        service = node.get("service") or {}
        if service.get("distribution") != "profile":
            continue
        metadata = path.parent / service["bundle"] / "metadata.json"
        families = {m["family"] for m in json.loads(metadata.read_text())["models"]} if metadata.exists() else set()
        if service["family"] not in families:
            return (
                f"{path.name}: {service['bundle']} does not hold the {service['family']} family yet; "
                "profile it with the command in docs/profiling.md"
            )
    return None


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_shipped_scenario_runs(path):
    if reason := _unprofiled(path):
        pytest.skip(reason)
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


@pytest.mark.parametrize("name", ["quickstart", "serving-cluster"])
def test_flagship_scenarios_judge_every_class_with_a_deadline_and_replicate(name):
    """Every class with a deadline states what it needs (a verdict follows), and intervals come from ≥ 5 replications."""
    loaded = load_scenario(Path(__file__).parent.parent / "scenarios" / f"{name}.yaml")
    assert loaded.run.replications >= 5
    for request_class in loaded.workload.classes:
        if request_class.deadline_ms is not None:
            assert request_class.miss_allowance is not None, f"{name}: class {request_class.name} gets no verdict"


def test_quickstart_answers_its_question_without_a_note():
    """At its own settings: a verdict for both classes, and its warm-up long enough that no note asks to raise it."""
    summary = run(load_scenario(Path(__file__).parent.parent / "scenarios" / "quickstart.yaml")).summary
    assert {name: entry["slo"]["verdict"] for name, entry in summary["classes"].items() if "slo" in entry} == {
        "interactive": "met", "batch": "met"
    }
    assert not [note for note in summary["notes"] if "raise it" in note], summary["notes"]
    assert summary["ci_method"] == "replications"


def test_plan_resnet_sizes_a_resnet50_deployment_from_the_cpu_bundle():
    path = Path(__file__).parent.parent / "scenarios" / "plan-resnet.yaml"
    if reason := _unprofiled(path):
        pytest.skip(reason)
    loaded = load_scenario(path)
    assert loaded.workload.arrival.rate_per_s == 400
    assert loaded.plan.space.variants.family == "resnet50"
    assert any(option is not None for option in loaded.plan.space.batching)  # dynamic batching is in the space
