"""README is a short guide whose links and commands hold, and the examples of the docs pages it sends readers to stay
true: the serving-system YAML block is a valid scenario fragment that runs, the profiling tables are what the shipped
bundles give, and the Python examples run."""

from __future__ import annotations

from pathlib import Path

import re

import pytest
import yaml

from simulator import run, scenario_from_dict

ROOT = Path(__file__).parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
SETUP_COMMANDS = (  # CI and new users start here: README opens with these two blocks, exactly
    "```bash\npython3 -m venv .venv && . .venv/bin/activate && pip install -q -e . && latsim run scenarios/quickstart.yaml\n```\n\n"
    "```bash\npython3 -m venv .venv && . .venv/bin/activate && pip install -q -e '.[test,profile,testbed]' && python -m pytest -q -n auto --maxprocesses 4 --dist loadfile\n```\n"
)


def test_readme_is_a_short_guide_that_opens_with_the_two_commands():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 300
    assert text.startswith("# latsim\n\n" + SETUP_COMMANDS)
    for heading in ("## A 5-minute tour", "## Concepts", "## How accurate is latsim", "## Calibrate from your own server"):
        assert heading in text, heading
    assert "![" in text.split("## Concepts", 1)[0].split("## A 5-minute tour", 1)[1]  # the tour has its picture


def test_readme_links_point_at_files_that_exist():
    text = README.read_text(encoding="utf-8")
    links = [target.split("#", 1)[0] for target in re.findall(r"\]\(([^)]+)\)", text) if not target.startswith(("http", "#"))]
    assert len(links) >= 15
    missing = [link for link in links if not (ROOT / link).exists()]
    assert not missing


def test_readme_prose_has_no_commit_hashes_or_dates():
    """History lives in docs/accuracy.md and benchmarks/results/; a results file's name may carry its date."""
    prose = re.sub(r"`[^`]*`|```.*?```", "", README.read_text(encoding="utf-8"), flags=re.S)
    assert not re.findall(r"\b20\d\d-\d\d-\d\d\b", prose)
    assert not [word for word in re.findall(r"\b[0-9a-f]{7,40}\b", prose) if re.search(r"[a-f]", word) and re.search(r"\d", word)]


def _yaml_block_after(page: Path, heading: str) -> dict:
    text = page.read_text(encoding="utf-8")
    section = text.split(heading, 1)[1]
    return yaml.safe_load(section.split("```yaml", 1)[1].split("```", 1)[0])


def test_serving_system_example_validates_and_runs():
    data = _yaml_block_after(DOCS / "serving-system.md", "# The serving system")
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

    readme = (DOCS / "profiles.md").read_text(encoding="utf-8")
    table = markdown_table(load_bundle(ROOT / "profiles" / hardware / "zoo"))
    rows = [line for line in table.splitlines() if line.startswith("| ")]
    assert len(rows) >= 15 and all(row in readme for row in rows)


def _python_block_after(page: Path, heading: str) -> str:
    text = page.read_text(encoding="utf-8")
    return text.split(heading, 1)[1].split("```python", 1)[1].split("```", 1)[0]


def test_python_api_example_runs(monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    exec(compile(_python_block_after(DOCS / "python-api.md", "# Python API"), "python-api.md", "exec", dont_inherit=True), {})
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("7 Estimate(") and printed[1] == "unstable"


def test_plugin_example_registers_a_router_a_scenario_can_name():
    from tests.helpers import base_scenario

    exec(compile(_python_block_after(DOCS / "plugins.md", "# Plug-in policies"), "plugins.md", "exec", dont_inherit=True), {})
    data = base_scenario(router={"policy": "first_up"})
    data["nodes"][0]["replicas"] = 2
    data["run"].update(requests=2000, warmup_requests=0, replications=1)
    summary = run(scenario_from_dict(data)).summary
    assert summary["nodes"]["n-0"]["served"] == 2000 and summary["nodes"]["n-1"]["served"] == 0
