"""``latsim validate`` of a plan scenario checks the plan's space at the target load, not the base node the plan varies."""

from __future__ import annotations

import yaml
from typer.testing import CliRunner

from simulator.cli import EXIT_UNSTABLE, app
from tests.test_plan import plan_scenario


def _validate(tmp_path, data: dict) -> tuple[int, str]:
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    result = CliRunner().invoke(app, ["validate", str(path)], env={"COLUMNS": "400"})
    return result.exit_code, " ".join(result.output.split())


def test_an_overloaded_base_node_the_plan_varies_is_not_refused(tmp_path):
    data = plan_scenario({"replicas": [1, 2, 3]})  # 150/s on 10 ms service: 1 replica is overloaded, 2 and 3 keep up
    data["workload"]["arrival"]["rate_per_s"] = 150
    code, output = _validate(tmp_path, data)
    assert code == 0, output
    assert "a plan over 3 configuration(s) at 150/s: 2 can keep up" in output
    assert "overloaded there (the plan rules them out): 1 replica (offered load 1.500)" in output


def test_a_space_where_nothing_keeps_up_is_unstable_and_names_the_configurations(tmp_path):
    code, output = _validate(tmp_path, plan_scenario({"replicas": [1]}, target=400.0))
    assert code == EXIT_UNSTABLE, output
    assert "0 can keep up; every one is overloaded at the target: 1 replica (offered load 4.000)" in output


def test_bad_input_in_a_configuration_of_the_space_is_reported(tmp_path):
    code, output = _validate(tmp_path, plan_scenario({"replicas": [2], "workers": [0]}))
    assert code == 2 and "workers" in output, output
