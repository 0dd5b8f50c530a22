"""Hostile inputs, bounds: values that are well-typed but would make latsim crash, hang or answer nonsense.

A testbed batch of 2,147,483,647 requests, a lognormal spread whose mean-1 multiplier is almost
always 0, a network leg of days in a run of seconds, a million samples to fit, names of a megabyte,
an overloaded scenario analysed without simulating, expressions nested 900 deep: each is refused
with exit 2 (exit 3 for the overload) naming the field and what is allowed, before any work, or
(1,000 preemptive classes) runs. Every limit is shown beside a value just inside it that is accepted.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from simulator.fitting.fitted_models import MAX_FILE_SAMPLES
from simulator.scenario.bounds import MAX_NAME_CHARS
from simulator.scenario.bounds import MAX_VARIATION_SIGMA
from simulator.testbed.config import MAX_BATCH_SIZE, TestbedConfig
from simulator.testbed.errors import TestbedError
from tests.helpers import base_scenario
from tests.hostile import assert_clean_error, assert_ok, cli, tiny_run, validate, write_scenario
from tests.test_hostile_testbed_tables import _campaign
from tests.test_plan import plan_scenario

# --- the testbed's server settings ---------------------------------------------------------------------------

TESTBED = [  # (id, the config, the field named)
    ("batch-2147483647", {"batching": {"max_batch_size": 2_147_483_647}}, "batching.max_batch_size"),
    ("batch-just-over", {"batching": {"max_batch_size": MAX_BATCH_SIZE + 1}}, "batching.max_batch_size"),
    ("preferred-sizes-many", {"batching": {"max_batch_size": 4, "preferred_batch_sizes": [1] * (MAX_BATCH_SIZE + 1)}},
     "batching.preferred_batch_sizes"),
    ("queue-delay-30-years", {"batching": {"max_batch_size": 2, "max_queue_delay_ms": 1e13}}, "batching.max_queue_delay_ms"),
    ("queue-delay-nan", {"batching": {"max_batch_size": 2, "max_queue_delay_ms": float("nan")}}, "batching.max_queue_delay_ms"),
    ("workers-a-million", {"workers": 1_000_000}, "workers"),
    ("threads-a-million", {"intra_op_threads": 1_000_000}, "intra_op_threads"),
    ("warmup-2e9", {"warmup_calls": 2_000_000_000}, "warmup_calls"),
    ("seq-len-huge", {"model": {"seq_len": 10**9}}, "model.seq_len"),
    ("seed-negative", {"model": {"seed": -1}}, "model.seed"),
    ("share-infinite", {"classes": [{"name": "a", "share": float("inf")}]}, "classes.0.share"),
    ("deadline-nan", {"classes": [{"name": "a", "deadline_ms": float("nan")}]}, "classes.0.deadline_ms"),
    ("priority-huge", {"classes": [{"name": "a", "priority": 2**40}]}, "classes.0.priority"),
    ("class-name-long", {"classes": [{"name": "a" * 201}]}, "classes.0.name"),
    ("classes-thousands", {"classes": [{"name": f"c{i}"} for i in range(1001)]}, "classes"),
]


@pytest.mark.parametrize(("config", "field"), [case[1:] for case in TESTBED], ids=[case[0] for case in TESTBED])
def test_a_testbed_config_out_of_bounds_is_refused_naming_the_field(config, field):
    with pytest.raises(TestbedError, match=f"testbed config: .*{field.replace('.', '[.]')}"):
        TestbedConfig.parse(config)


def test_the_largest_testbed_settings_are_accepted():
    config = TestbedConfig.parse({"batching": {"max_batch_size": MAX_BATCH_SIZE, "preferred_batch_sizes": [MAX_BATCH_SIZE]},
                                  "workers": 256, "warmup_calls": 10_000})
    assert config.batching.max_batch_size == MAX_BATCH_SIZE


def test_a_campaign_whose_testbed_batches_2147483647_is_refused_by_fit(tmp_path):
    campaign = _campaign(tmp_path)
    document = json.loads((campaign / "campaign.json").read_text())
    document["testbed"]["batching"]["max_batch_size"] = 2_147_483_647
    (campaign / "campaign.json").write_text(json.dumps(document))
    result = cli("fit", campaign, "--out", tmp_path / "c.yaml", "--quiet")
    assert_clean_error(result, "campaign.json", "testbed.batching.max_batch_size")


# --- a node's variation, the network, names ------------------------------------------------------------------


def _node(**fields) -> dict:
    scenario = base_scenario()
    scenario["nodes"][0].update(fields)
    return scenario


def _speed(sigma: float) -> dict:
    return {"factors": [1.0, 2.0], "transition": [[0.9, 0.1], [0.1, 0.9]], "variation_sigma": [sigma, 0.5]}


def _network(leg: str, mean_ms: float) -> dict:
    scenario = base_scenario()
    scenario["network"] = {leg: {"distribution": "scipy", "name": "uniform", "params": {"loc": mean_ms, "scale": 1.0}}}
    return scenario


def _pipeline(transfer_ms: float) -> dict:
    scenario = base_scenario()
    scenario["nodes"].append({**scenario["nodes"][0], "name": "m"})
    scenario["pipeline"] = {"stages": ["n", "m"], "transfer": {"distribution": "deterministic", "value_ms": transfer_ms}}
    return scenario


def _cache(hit_ms: float) -> dict:
    scenario = base_scenario()
    scenario["workload"]["keys"] = {"popularity": "zipf", "catalog_size": 100, "exponent": 0.8}
    scenario["cache"] = {"policy": {"policy": "lru", "capacity_entries": 10},
                         "hit_latency": {"distribution": "deterministic", "value_ms": hit_ms}}
    return scenario


def _named(where: str, length: int) -> dict:
    scenario = base_scenario()
    name = "n" * length
    if where == "scenario":
        scenario["name"] = name
    elif where == "class":
        scenario["workload"]["classes"][0]["name"] = name
    else:
        scenario["nodes"][0]["name"] = name
    return scenario


SCENARIOS = [  # (id, the scenario, words of the error)
    ("speed-sigma-10", _node(speed=_speed(10.0)), ["nodes[0].speed.variation_sigma", f"less than or equal to {MAX_VARIATION_SIGMA:g}"]),
    ("speed-sigma-just-over", _node(speed=_speed(3.01)), ["nodes[0].speed.variation_sigma"]),
    ("overhead-sigma-10", _node(overhead={"occupancy": [1.0], "mean_ms": [1.0], "variation_sigma": 10.0}), ["nodes[0].overhead.variation_sigma"]),
    ("response-leg-9e8-ms", _network("response", 9e8), ["network.response", "mean delay of 9e+05 s"]),
    ("request-leg-a-week", _network("request", 6e8), ["network.request"]),
    ("delay-a-day-each-way", _network("delay", 8.64e7), ["network.delay"]),
    ("pipeline-hop-a-week", _pipeline(6e8), ["pipeline.transfer", "mean delay of 6e+05 s"]),
    ("cache-hit-a-week", _cache(6e8), ["cache.hit_latency", "mean delay of 6e+05 s"]),
    ("scenario-name-megabyte", _named("scenario", 1_000_000), ["name: String should have at most 200 characters"]),
    ("scenario-name-just-over", _named("scenario", MAX_NAME_CHARS + 1), ["name"]),
    ("class-name-megabyte", _named("class", 1_000_000), ["workload.classes[0].name"]),
    ("node-name-megabyte", _named("node", 1_000_000), ["nodes[0].name"]),
    ("description-megabyte", {**base_scenario(), "description": "d" * 1_000_000}, ["description"]),
]


@pytest.mark.parametrize(("scenario", "needles"), [case[1:] for case in SCENARIOS], ids=[case[0] for case in SCENARIOS])
def test_a_scenario_out_of_bounds_is_refused_by_validate_and_run(tmp_path, scenario, needles):
    path = write_scenario(tmp_path, scenario)
    assert_clean_error(validate(path), *needles)
    assert_clean_error(cli("run", path, *tiny_run("--plots", tmp_path / "plots")), *needles)
    assert not (tmp_path / "plots").exists()


@pytest.mark.parametrize("scenario", [
    _node(speed=_speed(MAX_VARIATION_SIGMA)), _node(overhead={"occupancy": [1.0], "mean_ms": [1.0], "variation_sigma": 1.0}),
    _network("response", 50.0), _pipeline(1.0), _cache(0.5), _named("scenario", MAX_NAME_CHARS), _named("class", MAX_NAME_CHARS), _named("node", MAX_NAME_CHARS),
], ids=["speed-sigma-3", "overhead-sigma-1", "response-leg-50-ms", "pipeline-hop-1-ms", "cache-hit-0.5-ms", "scenario-name-200", "class-name-200", "node-name-200"])
def test_values_inside_the_bounds_run(tmp_path, scenario):
    assert_ok(cli("run", write_scenario(tmp_path, scenario), *tiny_run()))


def test_a_speed_spread_at_its_bound_keeps_the_mean_service_time(tmp_path):
    """At σ = 3 the mean-1 multiplier still averages 1 over a run: the mean service time stays near its 10 ms, not 0.00."""
    scenario = _node(speed={"factors": [1.0], "transition": [[1.0]], "variation_sigma": [1.0]})
    scenario["run"] = {"requests": 20_000, "warmup_requests": 1000, "replications": 4, "seed": 3}
    result = cli("run", write_scenario(tmp_path, scenario), "--quiet", "--out", tmp_path / "out")
    assert_ok(result)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    service = summary["classes"]["a"]["service_ms"]["mean"]
    assert service["ci_low"] <= 10.0 <= service["ci_high"] or abs(service["estimate"] - 10.0) < 1.0, service


# --- analyze without simulating, many preemptive classes ------------------------------------------------------


def test_analyze_without_simulating_says_an_overloaded_scenario_is_unstable(tmp_path):
    scenario = base_scenario()
    scenario["workload"]["arrival"]["rate_per_s"] = 500
    result = cli("analyze", write_scenario(tmp_path, scenario), "--no-simulate")
    assert_clean_error(result, "node n: offered load 5.000 ≥ 1: unstable", code=3)
    assert "ruled out" in result.stdout  # the theory is still shown first


def test_analyze_without_simulating_a_stable_scenario_exits_0(tmp_path):
    assert_ok(cli("analyze", write_scenario(tmp_path, base_scenario()), "--no-simulate"))


def test_a_thousand_preemptive_classes_run_and_are_analysed(tmp_path):
    scenario = base_scenario()
    scenario["workload"]["classes"] = [{"name": f"c{i}", "priority": i} for i in range(1000)]
    scenario["nodes"][0]["discipline"] = {"policy": "preemptive_priority"}
    path = write_scenario(tmp_path, scenario)
    per_class = 500  # characters of output: the summary and the theory have a row per class, and nothing more
    assert_ok(cli("run", path, "--requests", "2000", "--replications", "2", "--quiet", seconds=120, max_chars=1000 * per_class))
    assert_ok(cli("analyze", path, "--no-simulate", seconds=120, max_chars=1000 * per_class))


# --- fit: expressions and sizes ------------------------------------------------------------------------------


@pytest.fixture
def columns(tmp_path):
    path = tmp_path / "t.csv"
    rng = np.random.default_rng(1)
    np.savetxt(path, np.column_stack([rng.gamma(4.0, 1.0, 300), rng.gamma(2.0, 1.0, 300)]), delimiter=",", header="x,y", comments="")
    return path


DEEP = [  # (id, an expression 900 deep, or too long)
    ("unary-900", "-" * 900 + "x", "nests more than 50"),
    ("unary-plus-900", "+" * 900 + "x", "nests more than 50"),
    ("parentheses-900", "(" * 900 + "x" + ")" * 900, "at most 1000 characters"),
    ("sum-900", "+".join(["x"] * 900), "at most 1000 characters"),
    ("mixed-60", "-(" * 60 + "x" + ")" * 60, "nests more than 50"),
]


@pytest.mark.parametrize(("expression", "needle"), [case[1:] for case in DEEP], ids=[case[0] for case in DEEP])
def test_fit_refuses_an_expression_nested_900_deep(tmp_path, columns, expression, needle):
    assert_clean_error(cli("fit", columns, "--expression", expression, "--out", tmp_path / "f.yaml"), "expression", needle)


@pytest.mark.parametrize(("expression", "needle"), [case[1:] for case in DEEP], ids=[case[0] for case in DEEP])
def test_a_scenario_refuses_an_expression_nested_900_deep(tmp_path, columns, expression, needle):
    scenario = _node(service={"distribution": "empirical", "file": str(columns), "expression": expression})
    assert_clean_error(validate(write_scenario(tmp_path, scenario)), "nodes[0].service.expression", needle)


def test_fit_refuses_a_million_samples_at_once_naming_its_limit(tmp_path):
    path = tmp_path / "million.csv"
    np.savetxt(path, np.random.default_rng(0).gamma(4.0, 1.0, 1_000_000), header="ms", comments="", fmt="%.5g")
    result = cli("fit", path, "--out", tmp_path / "f.yaml", "--quiet", seconds=60)
    assert_clean_error(result, "1,000,000 times", f"at most {MAX_FILE_SAMPLES:,}", "contiguous stretch")
    assert not (tmp_path / "f.yaml").exists()


def test_fit_refuses_one_sample_over_its_limit(tmp_path):
    path = tmp_path / "over.csv"
    np.savetxt(path, np.full(MAX_FILE_SAMPLES + 1, 3.0), header="ms", comments="", fmt="%g")
    assert_clean_error(cli("fit", path, "--out", tmp_path / "f.yaml", "--quiet", seconds=60), f"{MAX_FILE_SAMPLES + 1:,} times")


def test_fit_help_documents_the_limit_it_enforces():
    assert f"at most {MAX_FILE_SAMPLES:,} times" in cli("fit", "--help", max_chars=100_000).stdout


def test_fit_shows_progress_on_a_samples_file(tmp_path):
    path = tmp_path / "t.csv"
    np.savetxt(path, np.random.default_rng(0).gamma(4.0, 1.0, 300), header="ms", comments="")
    result = cli("fit", path, "--out", tmp_path / "f.yaml")
    assert_ok(result)
    assert "1 cells in all" in result.stderr


# --- numbers given as text ------------------------------------------------------------------------------------


def _plan(**fields) -> dict:
    scenario = plan_scenario({"workers": [1, 2]})
    scenario["plan"].update(fields)
    return scenario


def _rate(value) -> dict:
    scenario = base_scenario()
    scenario["workload"]["arrival"]["rate_per_s"] = value
    return scenario


TEXT_NUMBERS = [  # (id, the scenario, the field named)
    ("cost-as-text", _plan(cost_per_hour="1.5"), "plan.cost_per_hour"),
    ("worker-cost-as-text", _plan(cost_per_worker_per_hour="0.5"), "plan.cost_per_worker_per_hour"),
    ("target-as-text", _plan(load={"targets_per_s": ["150"]}), "plan.load.targets_per_s"),
    ("top-as-text", _plan(top="2"), "plan.top"),
    ("rate-as-text", _rate("50"), "workload.arrival.rate_per_s"),
    ("rate-with-unit", _rate("50/s"), "workload.arrival.rate_per_s"),
    ("workers-as-text", _node(workers="2"), "nodes[0].workers"),
]


@pytest.mark.parametrize(("scenario", "field"), [case[1:] for case in TEXT_NUMBERS], ids=[case[0] for case in TEXT_NUMBERS])
def test_a_number_given_as_text_is_refused_naming_the_field(tmp_path, scenario, field):
    assert_clean_error(validate(write_scenario(tmp_path, scenario)), f"{field}", "expected a number, not text")


def test_a_number_in_exponent_form_stays_a_number(tmp_path):
    """YAML 1.1 reads 5e1 (no dot) as text; it is a number as written, so it is accepted."""
    path = write_scenario(tmp_path, yaml.safe_dump(base_scenario()).replace("rate_per_s: 50", "rate_per_s: 5e1"))
    assert "5e1" in path.read_text()
    assert_ok(validate(path))


# --- a plan's space ---------------------------------------------------------------------------------------------


def test_a_plan_space_over_its_maximum_is_refused_at_once(tmp_path):
    """100,000 configurations (the old maximum) would be validated and screened for minutes before any progress: refused."""
    from simulator.scenario.plan import MAX_CONFIGURATIONS

    scenario = plan_scenario({"replicas": list(range(1, 101)), "workers": list(range(1, 1001))})
    result = cli("plan", write_scenario(tmp_path, scenario), "--out", tmp_path / "out", "--quiet", seconds=30)
    assert_clean_error(result, "plan.space", "100,000 configurations", f"at most {MAX_CONFIGURATIONS:,}")
    assert not (tmp_path / "out").exists()


# --- a hidden-Markov service process given by hand -------------------------------------------------------------


def _hmm(directory, mu_log: list[float], sigma_log: list[float]) -> dict:
    """Measured times (an empirical model) drawn in the order of a chain given by hand."""
    np.savetxt(directory / "times.csv", np.random.default_rng(2).gamma(4.0, 2.5, 500), header="ms", comments="")
    process = {"kind": "hmm", "transition": [[0.9, 0.1], [0.1, 0.9]], "mu_log": mu_log, "sigma_log": sigma_log}
    return _node(service={"distribution": "empirical", "file": "times.csv", "process": process})


HMMS = [  # (id, mu_log, sigma_log, the field named): each overflowed exp() to inf or 0 draws
    ("mu-800", [800.0, 1.0], [0.5, 0.5], "mu_log[0]"),
    ("mu-minus-800", [1.0, -800.0], [0.5, 0.5], "mu_log[1]"),
    ("sigma-40", [1.0, 2.0], [40.0, 0.5], "sigma_log[0]"),
    ("sigma-just-over", [1.0, 2.0], [0.5, 3.01], "sigma_log[1]"),
]


@pytest.mark.parametrize(("mu_log", "sigma_log", "field"), [case[1:] for case in HMMS], ids=[case[0] for case in HMMS])
def test_an_hmm_chain_that_overflows_is_refused(tmp_path, mu_log, sigma_log, field):
    path = write_scenario(tmp_path, _hmm(tmp_path, mu_log, sigma_log))
    assert_clean_error(validate(path), f"nodes[0].service.process.{field}")


def test_an_hmm_chain_inside_the_bounds_runs(tmp_path):
    assert_ok(cli("run", write_scenario(tmp_path, _hmm(tmp_path, [20.0, -14.0], [MAX_VARIATION_SIGMA, 0.1])), *tiny_run()))
