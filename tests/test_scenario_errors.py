"""Bad scenario files give one clear message: file, field path, what is allowed; CLI exits 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from simulator import ScenarioError, load_scenario, scenario_from_dict
from tests.helpers import base_scenario


def _write(tmp_path: Path, data) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def _error(tmp_path: Path, data) -> str:
    path = _write(tmp_path, data)
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    message = str(caught.value)
    assert str(path) in message
    return message


def test_malformed_yaml_names_line(tmp_path):
    message = _error(tmp_path, "name: x\nworkload: [unclosed\n")
    assert "not valid YAML" in message and "line" in message


def test_unknown_key_lists_allowed_keys(tmp_path):
    data = base_scenario()
    data["nodes"][0]["wrokers"] = 2
    message = _error(tmp_path, data)
    assert "nodes[0].wrokers: unknown key" in message
    assert "workers" in message and "queue_capacity" in message


def test_unknown_key_inside_a_policy_names_its_fields(tmp_path):
    data = base_scenario()
    data["workload"]["arrival"]["rate"] = 5
    message = _error(tmp_path, data)
    assert "workload.arrival.rate: unknown key" in message
    assert "rate_per_s" in message


def test_negative_rate(tmp_path):
    data = base_scenario()
    data["workload"]["arrival"]["rate_per_s"] = -3
    message = _error(tmp_path, data)
    assert "workload.arrival.rate_per_s" in message and "greater than or equal to 0.000001" in message and "-3" in message


def test_missing_classes(tmp_path):
    data = base_scenario()
    del data["workload"]["classes"]
    assert "workload.classes: required field is missing" in _error(tmp_path, data)


def test_empty_classes(tmp_path):
    data = base_scenario()
    data["workload"]["classes"] = []
    assert "workload.classes" in _error(tmp_path, data)


def test_unknown_policy_lists_choices(tmp_path):
    data = base_scenario()
    data["nodes"][0]["discipline"] = {"policy": "lifo"}
    message = _error(tmp_path, data)
    assert "nodes[0].discipline" in message
    for name in ("fifo", "priority", "edf"):
        assert name in message


def test_soft_class_needs_target(tmp_path):
    data = base_scenario()
    del data["workload"]["classes"][0]["target"]
    assert "needs `target`" in _error(tmp_path, data)


def test_duplicate_class_names(tmp_path):
    data = base_scenario()
    data["workload"]["classes"].append(dict(data["workload"]["classes"][0]))
    assert "repeated: a" in _error(tmp_path, data)


def test_scipy_distribution_must_exist_and_be_nonnegative(tmp_path):
    data = base_scenario()
    data["nodes"][0]["service"] = {"distribution": "scipy", "name": "nosuch"}
    assert "not a continuous distribution of scipy.stats" in _error(tmp_path, data)
    data["nodes"][0]["service"] = {"distribution": "scipy", "name": "norm", "params": {"loc": 5, "scale": 1}}
    assert "negative service times" in _error(tmp_path, data)


def test_missing_data_file_is_reported_at_run(tmp_path):
    data = base_scenario()
    data["nodes"][0]["service"] = {"distribution": "empirical", "file": "missing.csv"}
    loaded = load_scenario(_write(tmp_path, data))
    from simulator import run

    with pytest.raises(ScenarioError, match="missing.csv does not exist"):
        run(loaded)


def test_top_level_must_be_mapping():
    with pytest.raises(ScenarioError, match="must be a mapping"):
        scenario_from_dict([1, 2])


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d["nodes"][0].update(wrokers=2),
        lambda d: d["workload"]["arrival"].update(rate_per_s=-1),
        lambda d: d["workload"].pop("classes"),
    ],
)
def test_cli_exits_2_without_traceback(tmp_path, mutate):
    data = base_scenario()
    mutate(data)
    path = _write(tmp_path, data)
    for command in ("run", "validate"):
        completed = subprocess.run(
            [sys.executable, "-m", "simulator", command, str(path)], capture_output=True, text=True, timeout=120
        )
        assert completed.returncode == 2
        assert "Traceback" not in completed.stderr
        assert str(path) in completed.stderr


def test_cli_malformed_yaml_exits_2(tmp_path):
    path = _write(tmp_path, "workload: {arrival: [\n")
    completed = subprocess.run([sys.executable, "-m", "simulator", "run", str(path)], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 2 and "not valid YAML" in completed.stderr and "Traceback" not in completed.stderr


def test_user_text_is_printed_as_text_not_terminal_markup(tmp_path):
    """Names and error messages with [brackets] reach the terminal verbatim (rich markup is escaped)."""
    data = base_scenario(name="[bold]demo[/bold]")
    data["run"].update(requests=200, replications=2)
    data["workload"]["classes"][0]["name"] = "[red]tier-1"
    ok = subprocess.run(
        [sys.executable, "-m", "simulator", "run", str(_write(tmp_path, data)), "--quiet"],
        capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "200"},
    )
    assert ok.returncode == 0 and "[bold]demo[/bold]" in ok.stdout and "[red]tier-1" in ok.stdout
    data["nodes"][0]["service"] = {"distribution": "empirical", "file": "times[v2].csv"}
    bad = subprocess.run(
        [sys.executable, "-m", "simulator", "run", str(_write(tmp_path, data))], capture_output=True, text=True, timeout=120
    )
    assert bad.returncode == 2 and "times[v2].csv" in bad.stderr
