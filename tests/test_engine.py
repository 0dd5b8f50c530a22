"""Engine behaviour: conservation of requests, real-time kinds, admission, stability, outputs."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import yaml

from simulator import UnstableSystemError, run, scenario_from_dict
from tests.helpers import base_scenario

THREE_KINDS = [
    {"name": "hard", "share": 1, "priority": 0, "deadline_ms": 400, "kind": "hard"},
    {"name": "firm", "share": 1, "priority": 1, "deadline_ms": 30, "kind": "firm"},
    {"name": "soft", "share": 1, "priority": 2, "deadline_ms": 30, "kind": "soft", "target": 0.5},
]


def _overloaded_bounded(admission: str) -> dict:
    """ρ = 1.2 with a bounded queue: both queue-full and deadline drops happen."""
    data = base_scenario()
    data["workload"]["arrival"]["rate_per_s"] = 120
    data["workload"]["classes"] = THREE_KINDS
    data["nodes"][0].update(queue_capacity=20, admission={"policy": admission}, discipline={"policy": "priority"})
    return data


@pytest.mark.parametrize("admission", ["none", "expired", "predictive"])
def test_every_request_is_served_or_dropped(admission):
    result = run(scenario_from_dict(_overloaded_bounded(admission)))
    summary = result.summary
    measured = summary["requests_per_replication"] * summary["replications"]
    classes = summary["classes"]
    assert classes["all"]["finished"] == measured
    assert sum(classes[c["name"]]["finished"] for c in THREE_KINDS) == measured
    for name, entry in classes.items():
        assert entry["finished"] == entry["completed"] + sum(entry["dropped"].values()), name
    assert classes["all"]["dropped"].get("queue_full", 0) > 0
    deadline_drops = {c["name"]: classes[c["name"]]["dropped"].get("deadline", 0) for c in THREE_KINDS}
    if admission == "none":
        assert sum(deadline_drops.values()) == 0
    else:
        assert deadline_drops["firm"] > 0
        assert deadline_drops["hard"] == 0 and deadline_drops["soft"] == 0  # only firm work is ever shed


def test_predictive_admission_drops_more_than_expired():
    expired = run(scenario_from_dict(_overloaded_bounded("expired"))).summary["classes"]["firm"]
    predictive = run(scenario_from_dict(_overloaded_bounded("predictive"))).summary["classes"]["firm"]
    assert predictive["dropped"]["deadline"] > expired["dropped"]["deadline"]


def test_dropped_firm_requests_count_as_misses():
    summary = run(scenario_from_dict(_overloaded_bounded("expired"))).summary
    firm = summary["classes"]["firm"]
    met_ratio = firm["deadline_met_ratio"]["estimate"]
    assert met_ratio <= firm["completed"] / firm["finished"] + 1e-9


def test_real_time_verdicts():
    data = base_scenario()
    data["workload"]["classes"] = [
        {"name": "hard-ok", "deadline_ms": 10_000, "kind": "hard", "miss_tolerance": 1e-2},
        {"name": "hard-unproven", "deadline_ms": 10_000, "kind": "hard"},
        {"name": "hard-miss", "deadline_ms": 20, "kind": "hard"},
        {"name": "soft-ok", "deadline_ms": 60, "kind": "soft", "target": 0.5},
        {"name": "soft-miss", "deadline_ms": 5, "kind": "soft", "target": 0.99},
    ]
    classes = run(scenario_from_dict(data)).summary["classes"]
    hard_ok, unproven = classes["hard-ok"]["slo"], classes["hard-unproven"]["slo"]
    # no miss among ~8,000 requests, which at ρ = 0.5 weigh as fewer independent ones (queues remember): the one-sided
    # 95 % Clopper-Pearson bound on n_eff trials is 1 − 0.05^(1/n_eff), n_eff well under n
    assert hard_ok["misses"] == 0 and hard_ok["verdict"] == "met" and hard_ok["bound_method"] == "effective_sample"
    n, effective = hard_ok["finished"], hard_ok["effective_requests"]
    assert n / 20 < effective < n
    assert hard_ok["miss_probability"]["upper_bound"] == pytest.approx(1 - 0.05 ** (1 / effective))
    assert unproven["misses"] == 0 and unproven["verdict"] == "inconclusive"  # far above the default 1e-4
    assert classes["hard-miss"]["slo"]["verdict"] == "violated" and classes["hard-miss"]["slo"]["misses"] > 0
    assert classes["soft-ok"]["slo"]["verdict"] == "met"
    assert classes["soft-miss"]["slo"]["verdict"] == "violated"


def test_processing_ratio_is_service_over_latency():
    data = base_scenario()
    data["nodes"][0]["service"] = {"distribution": "deterministic", "value_ms": 10}
    data["workload"]["arrival"] = {"process": "deterministic", "rate_per_s": 50}
    classes = run(scenario_from_dict(data)).summary["classes"]
    # Evenly spaced arrivals every 20 ms and 10 ms service never wait: latency = service.
    assert classes["all"]["processing_ratio"]["estimate"] == pytest.approx(1.0)
    assert classes["all"]["wait_ms"]["p99.9"]["estimate"] == pytest.approx(0.0)
    assert classes["all"]["latency_ms"]["max"]["estimate"] == pytest.approx(10.0)


def test_edf_serves_earliest_deadline_first():
    data = base_scenario()
    data["workload"]["arrival"]["rate_per_s"] = 90
    data["workload"]["classes"] = [
        {"name": "tight", "priority": 1, "deadline_ms": 20, "kind": "soft", "target": 0.5},
        {"name": "loose", "priority": 0, "deadline_ms": 500, "kind": "soft", "target": 0.5},
    ]
    waits = {}
    for policy in ("fifo", "edf", "priority"):
        data["nodes"][0]["discipline"] = {"policy": policy}
        classes = run(scenario_from_dict(data)).summary["classes"]
        waits[policy] = {name: classes[name]["wait_ms"]["mean"]["estimate"] for name in ("tight", "loose")}
    assert waits["edf"]["tight"] < waits["fifo"]["tight"] < waits["edf"]["loose"]
    assert waits["priority"]["loose"] < waits["fifo"]["loose"] < waits["priority"]["tight"]


def test_overload_is_refused_before_simulating():
    data = base_scenario()
    data["workload"]["arrival"]["rate_per_s"] = 100  # ρ = 1.0
    with pytest.raises(UnstableSystemError, match="offered load is 1.000"):
        run(scenario_from_dict(data))


def test_bursts_that_outgrow_the_queue_guard_stop_the_run():
    data = base_scenario()
    data["workload"]["arrival"] = {
        "process": "mmpp",
        "states": [{"rate_per_s": 10, "mean_duration_s": 200}, {"rate_per_s": 300, "mean_duration_s": 30}],
    }
    data["run"]["max_queue_length"] = 500
    with pytest.raises(UnstableSystemError, match="max_queue_length=500"):
        run(scenario_from_dict(data))


def test_loss_system_with_overload_runs():
    data = base_scenario()
    data["workload"]["arrival"]["rate_per_s"] = 300
    data["nodes"][0]["queue_capacity"] = 0
    summary = run(scenario_from_dict(data)).summary
    assert summary["offered_load"] == pytest.approx(3.0)
    assert summary["classes"]["all"]["dropped"]["queue_full"] > 0


def test_records_cover_every_measured_request(tmp_path):
    path = tmp_path / "requests.parquet"
    data = _overloaded_bounded("expired")
    result = run(scenario_from_dict(data), records_path=path, requests=3000)
    records = pd.read_parquet(path)
    assert len(records) == sum(result.summary["warmup_requests"]) + 3000 * 2  # warm-up rows too, marked
    records = records[records["measured"]]
    assert len(records) == 3000 * 2
    assert sorted(records["replication"].unique()) == [0, 1]
    assert set(records["dropped"]) == {"", "queue_full", "deadline"}
    served = records[records["dropped"] == ""]
    assert np.allclose(served["latency_ms"], served["wait_ms"] + served["service_ms"])
    assert served["wait_ms"].min() >= 0
    assert records.loc[records["dropped"] != "", "latency_ms"].isna().all()
    mean_latency = result.estimate("latency_ms.mean", "firm").estimate
    assert mean_latency == pytest.approx(served.loc[served["class"] == "firm", "latency_ms"].mean())  # pooled
    assert not list(tmp_path.glob("*partial*"))


def test_same_seed_same_numbers_and_parallel_jobs_agree():
    data = base_scenario()
    data["run"]["replications"] = 3
    loaded = scenario_from_dict(data)
    first = run(loaded).to_json()
    assert run(loaded).to_json() == first
    assert run(loaded, jobs=2).to_json() == first
    assert run(loaded, seed=2).to_json() != first


def test_single_replication_gives_batch_means_intervals_centred_on_the_estimate():
    data = base_scenario()
    data["run"]["replications"] = 1
    result = run(scenario_from_dict(data))
    assert result.summary["ci_method"] == "batch_means"
    for metric in ("latency_ms.mean", "latency_ms.p99", "wait_ms.p99", "processing_ratio", "deadline_met_ratio", "throughput_per_s"):
        value = result.estimate(metric)
        assert 0 <= value.ci_low < value.estimate < value.ci_high, metric
    mean = result.estimate("latency_ms.mean")
    assert mean.estimate == pytest.approx((mean.ci_low * mean.ci_high) ** 0.5)  # centred on the log scale


def test_single_replication_of_a_non_stationary_run_gives_no_intervals():
    data = base_scenario(events=[{"type": "load_spike", "at_s": 100, "duration_s": 20, "multiplier": 1.5}])
    data["run"]["replications"] = 1
    result = run(scenario_from_dict(data))
    assert result.summary["ci_method"] == "none" and result.estimate("latency_ms.mean").ci_low is None
    assert any("stationary" in note for note in result.summary["notes"])


def test_stats_frame_is_tidy():
    frame = run(scenario_from_dict(base_scenario())).to_frame()
    assert list(frame.columns) == ["scope", "name", "metric", "estimate", "ci_low", "ci_high"]
    assert {"latency_ms.p99.9", "wait_ms.mean", "deadline_met_ratio", "throughput_per_s"} <= set(frame["metric"])
    assert {"utilization", "mean_queue_length"} <= set(frame.loc[frame["scope"] == "node", "metric"])


def test_cli_json_to_stdout_and_out_folder(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(base_scenario()))
    out = tmp_path / "out"
    completed = subprocess.run(
        [sys.executable, "-m", "simulator", "run", str(path), "--requests", "2000", "--replications", "2",
         "--seed", "9", "--json", "-", "--out", str(out), "--quiet"],
        capture_output=True, text=True, timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    summary = json.loads(completed.stdout)
    assert summary["seed"] == 9 and summary["replications"] == 2 and summary["requests_per_replication"] == 2000
    for key in ("mean", "p50", "p90", "p95", "p99", "p99.9", "max"):
        assert math.isfinite(summary["classes"]["a"]["latency_ms"][key]["estimate"])
    assert json.loads((out / "summary.json").read_text()) == summary
    assert pd.read_parquet(out / "requests.parquet")["measured"].sum() == 4000
    assert "latency_ms.p99" in (out / "stats.csv").read_text()


def test_cli_reports_unstable_with_exit_3(tmp_path):
    data = base_scenario()
    data["workload"]["arrival"]["rate_per_s"] = 150
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data))
    completed = subprocess.run([sys.executable, "-m", "simulator", "run", str(path)], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 3
    assert "offered load is 1.500" in completed.stderr and "Traceback" not in completed.stderr


@pytest.mark.parametrize("engine", ["simpy", "fast"])
def test_a_run_whose_fields_need_neither_loads_neither_pandas_nor_scipy_stats(engine):
    """Startup: scenario loading and a run without files or tables import pandas and scipy.stats only where a field
    needs them (a scipy service, a trace, a profile, a fitted file, samples)."""
    code = f"""
import sys
from simulator import run, scenario_from_dict
data = {{"name": "x", "run": {{"requests": 3000, "replications": 2, "seed": 1}},
        "workload": {{"arrival": {{"process": "poisson", "rate_per_s": 50}}, "classes": [{{"name": "a"}}]}},
        "nodes": [{{"name": "n", "service": {{"distribution": "hyperexponential", "means_ms": [5, 20], "weights": [0.7, 0.3]}}}}]}}
result = run(scenario_from_dict(data), engine="{engine}")
assert result.summary["engine"] == "{engine}"
loaded = [name for name in ("pandas", "scipy.stats") if name in sys.modules]
assert not loaded, loaded
"""
    subprocess.run([sys.executable, "-c", code], check=True)
