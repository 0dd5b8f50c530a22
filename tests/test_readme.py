"""README's examples stay true: its serving-system YAML block is a valid scenario fragment that runs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from simulator import run, scenario_from_dict

ROOT = Path(__file__).parent.parent


def _yaml_block_after(heading: str) -> dict:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split(heading, 1)[1]
    return yaml.safe_load(section.split("```yaml", 1)[1].split("```", 1)[0])


def test_serving_system_example_validates_and_runs():
    data = _yaml_block_after("## The serving system")
    data["name"] = "readme-serving-system"
    # the fragment leaves out what every scenario has; fill it in, keep everything it shows
    data["workload"].update(
        arrival={"process": "poisson", "rate_per_s": 2000},
        classes=[{"name": "a", "deadline_ms": 100, "kind": "soft", "target": 0.9, "model": "ranker"}],
    )
    data["nodes"][0]["service"] = {
        "distribution": "scipy", "name": "expon", "params": {"scale": 1.0}, "batch_scaling": {"per_extra_item": 0.3}
    }
    data["nodes"].append({"name": "encoder", "service": {"distribution": "deterministic", "value_ms": 0.2}})
    data["events"][0]["nodes"] = ["scorer-p0"]
    loaded = scenario_from_dict(data, base_dir=ROOT / "scenarios")
    summary = run(loaded, requests=5000, replications=1).summary
    everyone = summary["classes"]["all"]
    assert everyone["finished"] == summary["measured_requests"][0] and everyone["cache_hit_ratio"]["estimate"] > 0


@pytest.mark.parametrize("hardware", ["cpu-amd-epyc-2c-avx512", "cpu-amd-epyc-2c", "cuda-nvidia-h100-80gb-hbm3"])
def test_profiling_tables_are_what_the_shipped_bundles_give(hardware):
    from simulator.formats.profile_bundle import load_bundle
    from simulator.profiling.table import markdown_table

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = markdown_table(load_bundle(ROOT / "profiles" / hardware / "zoo"))
    rows = [line for line in table.splitlines() if line.startswith("| ")]
    assert len(rows) >= 15 and all(row in readme for row in rows)


def _python_block_after(heading: str) -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return text.split(heading, 1)[1].split("```python", 1)[1].split("```", 1)[0]


def test_python_api_example_runs(monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    exec(compile(_python_block_after("### From Python"), "README.md", "exec", dont_inherit=True), {})
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("7 Estimate(") and printed[1] == "unstable"


def test_plugin_example_registers_a_router_a_scenario_can_name():
    from tests.helpers import base_scenario

    exec(compile(_python_block_after("### Plug-in policies"), "README.md", "exec", dont_inherit=True), {})
    data = base_scenario(router={"policy": "first_up"})
    data["nodes"][0]["replicas"] = 2
    data["run"].update(requests=2000, warmup_requests=0, replications=1)
    summary = run(scenario_from_dict(data)).summary
    assert summary["nodes"]["n-0"]["served"] == 2000 and summary["nodes"]["n-1"]["served"] == 0
