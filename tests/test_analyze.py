"""``analyze``: queueing theory per class and node where a formula applies, a clear refusal where none does.

Table values are the published ones (Erlang B and Erlang C tables, 3-4 significant digits);
simulation checks run at confidence 0.999 and must put the exact value inside their interval.
"""

from __future__ import annotations

import copy

import pytest
from typer.testing import CliRunner

import simulator.analytic as analytic
from simulator import run, scenario_from_dict
from simulator.analysis import analyze
from simulator.cli import app
from tests.helpers import base_scenario

EXPON_10MS = {"distribution": "scipy", "name": "expon", "params": {"scale": 10.0}}


def scenario(rate_per_s: float = 50, workers: int = 1, service: dict | None = None, **node: object):
    data = base_scenario()
    data["workload"]["arrival"]["rate_per_s"] = rate_per_s
    data["nodes"][0].update(workers=workers, service=service or EXPON_10MS, **node)
    return data


def report_of(data: dict):
    return analyze(scenario_from_dict(data))


def value(report, metric: str, name: str = "a", scope: str = "class") -> float:
    prediction = report.get(metric, name, scope)
    assert prediction is not None, (metric, report.to_frame(), report.ruled_out)
    return prediction.value


@pytest.mark.parametrize(("servers", "erlangs", "table"), [(5, 4.0, 0.554), (10, 8.0, 0.409), (2, 1.0, 0.333)])
def test_the_probability_of_waiting_matches_the_erlang_c_table(servers, erlangs, table):
    report = report_of(scenario(rate_per_s=erlangs * 100, workers=servers))  # mean service 10 ms: A = λ·10 ms
    assert value(report, "wait_probability") == pytest.approx(table, abs=5e-4)
    assert report.get("wait_probability", "a").formula.startswith(f"M/M/{servers}")
    wait_ms = value(report, "wait_ms.mean")
    assert wait_ms == pytest.approx(table * 10.0 / (servers - erlangs), rel=2e-3)  # C/(cμ − λ)
    assert value(report, "utilization", "n", "node") == pytest.approx(erlangs / servers)


@pytest.mark.parametrize(("servers", "erlangs", "table"), [(10, 5.0, 0.0184), (5, 2.0, 0.0367), (20, 15.0, 0.0456)])
def test_the_blocking_of_a_loss_system_matches_the_erlang_b_table(servers, erlangs, table):
    lognormal = {"distribution": "scipy", "name": "lognorm", "params": {"s": 1.0, "scale": 10 / 1.6487212707}}
    report = report_of(scenario(rate_per_s=erlangs * 100, workers=servers, service=lognormal, queue_capacity=0))
    assert value(report, "drop_ratio") == pytest.approx(table, abs=5e-5)
    assert "insensitive" in report.get("drop_ratio", "a").formula


def test_m_g_1_gives_pollaczek_khinchine_and_takacs():
    gamma = {"distribution": "scipy", "name": "gamma", "params": {"a": 2.0, "scale": 5.0}}  # mean 10, E[S²] 150, E[S³] 3000
    report = report_of(scenario(rate_per_s=70, service=gamma))
    rate = 0.07
    wait = rate * 150 / (2 * (1 - 0.7))
    assert value(report, "wait_ms.mean") == pytest.approx(wait)
    assert value(report, "wait_ms.second_moment") == pytest.approx(2 * wait**2 + rate * 3000 / (3 * 0.3))
    assert value(report, "wait_probability") == pytest.approx(0.7)


def test_approximations_and_bounds_are_labelled_so():
    gamma = {"distribution": "scipy", "name": "gamma", "params": {"a": 2.0, "scale": 5.0}}
    mgc = report_of(scenario(rate_per_s=140, workers=2, service=gamma))
    assert mgc.get("wait_ms.mean", "a").kind == "approximation" and "Lee–Longton" in mgc.get("wait_ms.mean", "a").formula
    data = scenario(rate_per_s=70, service=gamma)
    data["workload"]["arrival"] = {"process": "deterministic", "rate_per_s": 70}
    dg1 = report_of(data)
    kinds = {p.kind: p for p in dg1.predictions if p.metric == "wait_ms.mean" and p.name == "a"}
    assert set(kinds) == {"approximation", "upper_bound"} and "Kingman" in kinds["approximation"].formula
    assert kinds["upper_bound"].value >= kinds["approximation"].value
    replicated = report_of(scenario(rate_per_s=140, service=gamma, replicas=2) | {"router": {"policy": "round_robin"}})
    assert "Erlang-2" in replicated.get("wait_ms.mean", "a").formula


def test_priorities_give_cobham_and_preemptive_resume():
    data = scenario(rate_per_s=60, discipline={"policy": "priority"})
    data["workload"]["classes"] = [
        {"name": "hi", "share": 1, "priority": 0},
        {"name": "lo", "share": 2, "priority": 1, "service": {"distribution": "deterministic", "value_ms": 8.0}},
    ]
    rates, means, seconds = [0.02, 0.04], [10.0, 8.0], [200.0, 64.0]
    waits = analytic.priority_mg1_mean_waits_ms(rates, means, seconds)
    report = report_of(data)
    assert value(report, "wait_ms.mean", "hi") == pytest.approx(waits[0])
    assert value(report, "wait_ms.mean", "lo") == pytest.approx(waits[1])
    assert "Cobham" in report.get("wait_ms.mean", "lo").formula
    data["nodes"][0]["discipline"] = {"policy": "preemptive_priority"}
    sojourns = analytic.preemptive_priority_mg1_mean_sojourns_ms(rates, means, seconds)
    report = report_of(data)
    assert value(report, "latency_ms.mean", "lo") == pytest.approx(sojourns[1])


def test_a_tandem_of_m_m_1_stages_is_exact_and_a_ttl_cache_is_exact():
    data = scenario(rate_per_s=50)
    data["nodes"].append({"name": "m", "workers": 1, "service": {"distribution": "scipy", "name": "expon", "params": {"scale": 5.0}}})
    data["pipeline"] = {"stages": ["n", "m"], "transfer": {"distribution": "deterministic", "value_ms": 1.0}}
    report = report_of(data)
    expected = analytic.tandem_mmc_mean_sojourn_ms([1, 1], 0.05, [0.1, 0.2]) + 1.0
    assert value(report, "latency_ms.mean") == pytest.approx(expected)
    assert report.get("latency_ms.mean", "a").kind == "exact"
    cached = scenario(rate_per_s=50)
    cached["workload"]["keys"] = {"popularity": "zipf", "catalog_size": 1000, "exponent": 0.8}
    cached["cache"] = {"policy": {"policy": "ttl", "ttl_ms": 500, "capacity_entries": 1000},
                       "hit_latency": {"distribution": "deterministic", "value_ms": 0.1}}
    report = report_of(cached)
    popularity = analytic.zipf_popularity(1000, 0.8)
    assert value(report, "cache_hit_ratio", "all") == pytest.approx(analytic.ttl_hit_ratio(popularity, 0.05, 500))
    assert any("mix hits and misses" in ruled.reason for ruled in report.ruled_out)


def test_m_m_1_k_matches_the_closed_form_at_any_load():
    """M/M/1/K at ρ 1.5 with 5 waiting places (K 6): blocking (1 − ρ)ρ^K / (1 − ρ^{K+1}), and Little's law for the wait."""
    report = report_of(scenario(rate_per_s=150, queue_capacity=5))
    rho, places = 1.5, 6
    p = [(1 - rho) * rho**n / (1 - rho ** (places + 1)) for n in range(places + 1)]
    assert value(report, "drop_ratio") == pytest.approx(p[-1])
    queue = sum((n - 1) * p[n] for n in range(1, places + 1))
    assert value(report, "mean_queue_length", "n", "node") == pytest.approx(queue)
    assert value(report, "wait_ms.mean") == pytest.approx(queue / (0.15 * (1 - p[-1])))
    assert "M/M/1/6" in report.get("drop_ratio", "a").formula


def test_m_m_c_k_agrees_with_simulation():
    """M/M/2/5 at ρ 0.9: blocking, mean wait and the p90 wait of admitted requests inside the simulation's 0.999 intervals."""
    data = scenario(rate_per_s=180, workers=2, queue_capacity=3)
    data["run"].update(requests=60000, replications=4, confidence=0.999, seed=21)
    report = report_of(data)
    result = run(scenario_from_dict(data))
    for metric in ("drop_ratio", "wait_ms.mean", "wait_ms.p90", "wait_probability"):
        simulated = result.estimate(metric, "a")
        assert simulated.ci_low <= value(report, metric) <= simulated.ci_high, (metric, simulated, value(report, metric))


REFUSALS = {
    "batching": ({"batching": {"max_batch_size": 4}}, "batching"),
    "jsq": ({"replicas": 2}, "load-aware routing (jsq)"),
    "finite-room": ({"queue_capacity": 5, "service": {"distribution": "deterministic", "value_ms": 10.0}}, "exact for M/M/c/K"),
    "timeouts": ({"queue_policy": {"default": {"timeout_ms": 50}}}, "queue policy"),
    "device-slowdown": ({"device": {"concurrency_slowdown": [1.0, 1.5]}}, "concurrency slowdown"),
    "occupancy-slowdown": ({"occupancy_slowdown": {"occupancy": [1, 2], "factors": [1.0, 1.2]}}, "node occupancy_slowdown"),
    "edf-classes": ({"discipline": {"policy": "edf"}}, "EDF"),
    "preemptive-repeat": ({"discipline": {"policy": "preemptive_priority", "mode": "repeat"}}, "preemptive-resume M/G/1 only"),
    "unstable": ({"workers": 1, "service": {"distribution": "deterministic", "value_ms": 30.0}}, "unstable"),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_formulas_a_feature_rules_out_are_refused_with_the_reason(case):
    node, needle = REFUSALS[case]
    data = scenario(**node)
    if case == "jsq":
        data["router"] = {"policy": "jsq"}
    if case in ("edf-classes", "preemptive-repeat"):
        data["workload"]["classes"] = [
            {"name": "a", "share": 1, "priority": 0, "deadline_ms": 20, "kind": "soft", "target": 0.9},
            {"name": "b", "share": 1, "priority": 1, "service": {"distribution": "deterministic", "value_ms": 5.0}},
        ]
    report = report_of(data)
    assert not [p for p in report.predictions if p.scope == "class"], report.to_frame()
    reasons = " | ".join(ruled.reason for ruled in report.ruled_out)
    assert needle in reasons, reasons


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (lambda d: d["workload"].update(arrival={"process": "mmpp", "states": [{"rate_per_s": 80, "mean_duration_s": 5}, {"rate_per_s": 20, "mean_duration_s": 5}]}), "mmpp"),
        (lambda d: d.update(events=[{"type": "failure", "nodes": ["n"], "at_s": 10, "duration_s": 5}]), "events (failure)"),
        (lambda d: d["nodes"][0].update(admission={"policy": "expired"}) or d["workload"]["classes"][0].update(kind="firm", target=None), "admission control"),
        (lambda d: d["nodes"][0].update(service={"distribution": "empirical", "file": "t.csv", "process": "replay"}), "order matters"),
    ],
    ids=["mmpp", "events", "admission", "service-process"],
)
def test_scenario_wide_assumptions_are_refused_with_the_reason(tmp_path, change, needle):
    (tmp_path / "t.csv").write_text("ms\n5\n10\n")
    data = copy.deepcopy(scenario())
    change(data)
    report = analyze(scenario_from_dict(data, base_dir=tmp_path))
    assert not report.predictions
    assert needle in " | ".join(ruled.reason for ruled in report.ruled_out)


def test_simulated_priority_m_g_1_agrees_with_cobham_within_its_interval():
    data = scenario(rate_per_s=60, discipline={"policy": "priority"})
    data["workload"]["classes"] = [
        {"name": "hi", "share": 1, "priority": 0},
        {"name": "lo", "share": 2, "priority": 1, "service": {"distribution": "hyperexponential", "weights": [0.9, 0.1], "means_ms": [5.0, 35.0]}},
    ]
    data["run"] = {"requests": 30_000, "replications": 10, "seed": 5, "confidence": 0.999}
    loaded = scenario_from_dict(data)
    compared = analyze(loaded).compare(run(loaded))
    exact = compared[(compared["kind"] == "exact") & (compared["verdict"] != "not simulated")]
    assert len(exact) >= 6 and set(exact["verdict"]) == {"agrees"}, exact.to_string()


def test_the_command_prints_theory_and_reasons_and_run_flags_the_column(tmp_path):
    import yaml

    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(scenario(rate_per_s=300, workers=4) | {"run": {"requests": 4000, "replications": 3, "seed": 1}}))
    runner = CliRunner()
    theory = runner.invoke(app, ["analyze", str(path), "--no-simulate"], env={"COLUMNS": "200"})
    assert theory.exit_code == 0 and "M/M/4 (Erlang C)" in theory.output and "simulated" not in theory.output
    both = runner.invoke(app, ["run", str(path), "--analytic", "--quiet"], env={"COLUMNS": "200"})
    assert both.exit_code == 0 and "simulated [CI]" in both.output and "agrees" in both.output, both.output
    path.write_text(yaml.safe_dump(scenario(batching={"max_batch_size": 4})))
    refused = runner.invoke(app, ["analyze", str(path), "--no-simulate"], env={"COLUMNS": "200"})
    assert refused.exit_code == 0 and "No formula applies" in refused.output and "ruled out (node n): batching" in refused.output
