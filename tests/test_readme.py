"""README's examples stay true: its serving-system YAML block is a valid scenario fragment that runs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from simulator import run_scenario, scenario_from_dict

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
    summary = run_scenario(loaded, requests=5000, replications=1).summary
    everyone = summary["classes"]["all"]
    assert everyone["finished"] == 5000 and everyone["cache_hit_ratio"]["estimate"] > 0


@pytest.mark.parametrize("hardware", ["cpu-amd-epyc-2c-avx512", "cpu-amd-epyc-2c", "cuda-nvidia-h100-80gb-hbm3"])
def test_profiling_tables_are_what_the_shipped_bundles_give(hardware):
    from simulator.profiling.bundle import load_bundle
    from simulator.profiling.table import markdown_table

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = markdown_table(load_bundle(ROOT / "profiles" / hardware / "zoo"))
    rows = [line for line in table.splitlines() if line.startswith("| ")]
    assert len(rows) >= 15 and all(row in readme for row in rows)
