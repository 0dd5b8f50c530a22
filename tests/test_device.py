"""GPU device stages (h2d copy, compute, d2h copy; copy engines; concurrency slowdown) and the
per-node model cache (LRU within a memory budget; a miss pays a cold load).

Deterministic times are used wherever the answer can be worked out by hand, and checked
exactly; the one statistical check uses the run's own confidence interval.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from simulator import ScenarioError, load_scenario, run, scenario_from_dict
from tests.helpers import base_scenario

SCENARIOS = Path(__file__).parent.parent / "scenarios"


def det(ms: float) -> dict:
    return {"distribution": "deterministic", "value_ms": ms}


def _records(tmp_path, data, **kwargs) -> tuple[pd.DataFrame, object]:
    path = tmp_path / "requests.parquet"
    result = run(scenario_from_dict(data), records_path=path, **kwargs)
    records = pd.read_parquet(path)
    return records[records["measured"]], result


def _served(records: pd.DataFrame) -> pd.DataFrame:
    return records[records["dropped"] == ""]


def _device_scenario(*, rate_per_s: float, workers: int, compute_ms: float, device: dict, **run) -> dict:
    data = base_scenario()
    data["run"].update(run)
    data["workload"]["arrival"] = {"process": "deterministic", "rate_per_s": rate_per_s}
    data["nodes"][0].update(workers=workers, service=det(compute_ms), device=device)
    return data


def _two_model_scenario(*, memory_mb: float, workers: int = 1, rate_per_s: float = 10, **run) -> dict:
    """Two classes, each with its own 60 MB model that takes exactly 50 ms to load."""
    data = base_scenario()
    data["run"].update(run)
    data["workload"]["arrival"] = {"process": "deterministic", "rate_per_s": rate_per_s}
    data["workload"]["classes"] = [
        {"name": "a", "deadline_ms": 500, "kind": "soft", "target": 0.9, "model": "ma"},
        {"name": "b", "deadline_ms": 500, "kind": "soft", "target": 0.9, "model": "mb"},
    ]
    data["models"] = {"ma": {"size_mb": 60, "load": det(50)}, "mb": {"size_mb": 60, "load": det(50)}}
    data["nodes"][0].update(workers=workers, service=det(5), model_cache={"memory_mb": memory_mb})
    return data


def _max_models_resident_at_once(records: pd.DataFrame) -> int:
    """Most distinct models whose requests hold them at the same instant.

    A request holds its model from the end of its load stage (``start + load_ms``) until it
    ends; a model in use is never evicted, so this many models were resident together.
    """
    served = _served(records)
    most = 0
    for _, replication in served.groupby("replication"):
        events = sorted(
            [(start, 1, model) for start, model in zip(replication["start_ms"] + replication["load_ms"], replication["class"])]
            + [(end, -1, model) for end, model in zip(replication["end_ms"], replication["class"])],
            key=lambda event: (event[0], event[1]),  # at equal times an end comes before a start
        )
        holding: dict[str, int] = defaultdict(int)
        for _, change, model in events:
            holding[model] += change
            most = max(most, sum(1 for count in holding.values() if count > 0))
    return most


# -- 1. the stages of one call --------------------------------------------------------------


def test_staged_call_at_low_load_is_h2d_plus_compute_plus_d2h(tmp_path):
    data = _device_scenario(
        rate_per_s=10, workers=1, compute_ms=5, device={"h2d": det(1), "d2h": det(2)},
        requests=200, warmup_requests=0, replications=1,
    )
    records, result = _records(tmp_path, data)
    assert len(records) == 200
    assert result.summary["offered_load"] == pytest.approx(10 * 8 / 1000)  # copies hold the worker too
    # arrivals every 100 ms, calls of 1 + 5 + 2 = 8 ms: nobody waits, every call is the same
    assert (records["latency_ms"] == 8.0).all()
    assert (records["service_ms"] == 8.0).all() and (records["wait_ms"] == 0.0).all()
    assert (records["copy_ms"] == 3.0).all() and (records["compute_ms"] == 5.0).all()
    assert (records["load_ms"] == 0.0).all()  # no model cache: no loads
    # the breakdown adds up: latency = wait + service, service = load + copies + compute
    assert np.allclose(records["latency_ms"], records["end_ms"] - records["arrival_ms"])
    assert np.allclose(records["latency_ms"], records["wait_ms"] + records["service_ms"])
    assert np.allclose(records["service_ms"], records["load_ms"] + records["copy_ms"] + records["compute_ms"])


def test_one_staged_worker_is_an_md1_server():
    """Poisson arrivals to one worker whose call is h2d 1 + compute 5 + d2h 2 = 8 ms, fixed:
    Pollaczek–Khinchine gives the mean wait ρ·S / (2(1 − ρ)) = 4 ms at ρ = 0.5."""
    data = base_scenario()
    data["run"].update(requests=20000, warmup_requests=2000, replications=4, seed=3)
    data["workload"]["arrival"] = {"process": "poisson", "rate_per_s": 62.5}
    data["nodes"][0].update(service=det(5), device={"h2d": det(1), "d2h": det(2)})
    result = run(scenario_from_dict(data))
    wait = result.estimate("wait_ms.mean")
    assert wait.ci_low <= 4.0 <= wait.ci_high
    assert result.estimate("service_ms.mean").estimate == pytest.approx(8.0)


# -- 2. copies serialize on a copy engine, and overlap the other worker's compute -----------


def test_one_copy_engine_serializes_copies_but_overlaps_them_with_compute(tmp_path):
    """h2d 6, compute 2, d2h 1 ms; two workers; saturating arrivals.

    One worker alone would finish a call every 9 ms. With one h2d engine shared by two workers
    the h2d engine is the bottleneck: a call finishes every 6 ms exactly (copies serialize, yet
    one worker's copy overlaps the other's compute and d2h). In steady state each worker waits
    3 ms for the engine: copy_ms = 3 + 6 + 1 = 10, compute 2, service 12. With two engines
    the workers are independent: 2 calls per 9 ms.
    """
    device = {"h2d": det(6), "d2h": det(1), "copy_engines": 1}
    data = _device_scenario(rate_per_s=400, workers=2, compute_ms=2, device=device, requests=3000, warmup_requests=300, replications=2)
    data["nodes"][0]["queue_capacity"] = 20  # a loss system: saturated, yet stable
    records, _ = _records(tmp_path, data)
    served = _served(records)
    assert len(served) > 1000 and (records["dropped"].isin(["", "queue_full"])).all()
    for _, replication in served.groupby("replication"):
        gaps = np.diff(np.sort(replication["end_ms"].to_numpy()))
        assert np.allclose(gaps, 6.0)
    assert np.allclose(served["copy_ms"], 10.0)
    assert np.allclose(served["compute_ms"], 2.0)
    assert np.allclose(served["service_ms"], 12.0)

    data["nodes"][0]["device"]["copy_engines"] = 2
    records, _ = _records(tmp_path, data)
    served = _served(records)
    assert np.allclose(served["copy_ms"], 7.0) and np.allclose(served["service_ms"], 9.0)  # no waits for an engine
    for _, replication in served.groupby("replication"):
        ends = np.sort(replication["end_ms"].to_numpy())
        assert (len(ends) - 1) / (ends[-1] - ends[0]) == pytest.approx(2 / 9.0)


# -- 3. compute slows down when both workers compute at once --------------------------------


def test_concurrency_slowdown_stretches_compute_when_both_workers_compute(tmp_path):
    """compute 10 ms, slowdown [1.0, 1.5], h2d = d2h = 1 ms on two copy engines, two workers.

    A call progresses at 1/slowdown(n) of its solo speed while n calls compute. Alone (low
    load) it computes in 10 ms. Saturated, each worker computes alone for the 2 ms the other
    spends copying and shares the device for the rest: 2 + x / 1.5 = 10 gives x = 12, so
    14 ms of compute + 2 ms of copies = 16 ms per call and worker.
    """
    device = {"h2d": det(1), "d2h": det(1), "copy_engines": 2, "concurrency_slowdown": [1.0, 1.5]}
    data = _device_scenario(rate_per_s=10, workers=2, compute_ms=10, device=device, requests=100, warmup_requests=0, replications=1)
    records, _ = _records(tmp_path, data)
    assert (records["compute_ms"] == 10.0).all() and (records["latency_ms"] == 12.0).all()

    data = _device_scenario(rate_per_s=300, workers=2, compute_ms=10, device=device, requests=3000, warmup_requests=300, replications=2)
    data["nodes"][0]["queue_capacity"] = 10
    records, result = _records(tmp_path, data)
    served = _served(records)
    for _, replication in served.groupby("replication"):
        steady = replication.sort_values("end_ms").iloc[:-2]  # the last call of a worker may finish alone
        assert np.allclose(steady["compute_ms"], 14.0) and np.allclose(steady["service_ms"], 16.0)
        ends = steady["end_ms"].to_numpy()
        assert np.allclose(ends[2:] - ends[:-2], 16.0)  # two calls every 16 ms


def test_a_call_that_starts_alone_slows_down_when_another_joins(tmp_path):
    """Calls every 5 ms, compute 10 ms, slowdown [1.0, 2.0], no copy time to speak of: the first
    call computes alone for 5 ms (half its work), then shares the device: 5 more of work at half
    speed = 10 ms, so it ends at 15 ms; from then on every call overlaps two others' halves."""
    device = {"h2d": det(1e-6), "d2h": det(1e-6), "copy_engines": 2, "concurrency_slowdown": [1.0, 2.0]}
    data = _device_scenario(rate_per_s=200, workers=2, compute_ms=10, device=device, requests=2, warmup_requests=0, replications=1)
    data["nodes"][0]["queue_capacity"] = 0  # the load check sees 100 % utilization; two calls never queue
    records, _ = _records(tmp_path, data)
    first, second = records.sort_values("arrival_ms").itertuples()
    assert first.compute_ms == pytest.approx(15.0)  # 5 alone + 10 shared
    assert second.compute_ms == pytest.approx(15.0)  # 10 shared (5 of work) + 5 alone


# -- 4. the model cache ---------------------------------------------------------------------


def test_model_cache_holding_one_model_reloads_on_every_switch(tmp_path):
    # one worker, arrivals every 100 ms, calls of 5 ms (+ 50 ms load): served in arrival order
    records, result = _records(tmp_path, _two_model_scenario(memory_mb=100, requests=400, warmup_requests=0, replications=2))
    switches = 0
    for _, replication in records.groupby("replication"):
        replication = replication.sort_values("arrival_ms")
        assert (replication["wait_ms"] == 0).all()
        classes = replication["class"].to_numpy()
        switched = np.r_[True, classes[1:] != classes[:-1]]  # the first call loads too
        switches += switched.sum()
        assert 50 < switched.sum() < len(classes)  # both kinds of call occur
        assert (replication["load_ms"].to_numpy() == np.where(switched, 50.0, 0.0)).all()
        assert (replication["latency_ms"].to_numpy() == np.where(switched, 55.0, 5.0)).all()
    assert result.summary["nodes"]["n"]["model_loads"] == switches


def test_model_cache_holding_both_models_loads_each_once(tmp_path):
    records, result = _records(tmp_path, _two_model_scenario(memory_mb=120, requests=400, warmup_requests=0, replications=2))
    assert result.summary["nodes"]["n"]["model_loads"] == 2 * 2
    for _, replication in records.groupby("replication"):
        loaded = replication[replication["load_ms"] > 0]
        assert sorted(loaded["class"]) == ["a", "b"]
        assert (loaded["load_ms"] == 50.0).all()
        first_of_class = replication.sort_values("arrival_ms").groupby("class")["request_id"].first()
        assert sorted(loaded["request_id"]) == sorted(first_of_class)


def test_concurrent_loads_never_overcommit_model_memory(tmp_path):
    """Two workers, memory for one model: a load of the other model must wait until the
    resident one is idle, so two models are never in use together (a load in progress holds
    its memory too)."""
    data = _two_model_scenario(memory_mb=100, workers=2, rate_per_s=30, requests=1000, warmup_requests=0, replications=2)
    data["workload"]["arrival"] = {"process": "poisson", "rate_per_s": 30}
    records, _ = _records(tmp_path, data)
    assert (records["load_ms"] > 0).sum() > 100  # many switches happened
    assert _max_models_resident_at_once(records) == 1
    data["nodes"][0]["model_cache"]["memory_mb"] = 120
    records, _ = _records(tmp_path, data)
    assert _max_models_resident_at_once(records) == 2


# -- 5. a node failure in the middle of staged calls -----------------------------------------


OUTAGES_S = [(1.0, 0.5), (2.0031, 0.4), (3.0017, 0.3), (4.00277, 0.6), (5.5009, 0.2), (6.7013, 0.5)]


def test_node_failure_during_staged_calls_loses_no_request(tmp_path):
    """Failures hit calls waiting for a copy engine, copying, computing and loading a model;
    every request is retried on the other replica and finishes exactly once."""
    data = base_scenario()
    data["run"].update(requests=2000, warmup_requests=0, replications=2, seed=5)
    data["workload"]["arrival"] = {"process": "poisson", "rate_per_s": 250}
    data["workload"]["classes"] = [
        {"name": "a", "deadline_ms": 500, "kind": "soft", "target": 0.9, "model": "ma"},
        {"name": "b", "share": 0.2, "deadline_ms": 500, "kind": "soft", "target": 0.9, "model": "mb"},
    ]
    data["models"] = {"ma": {"size_mb": 60, "load": det(3)}, "mb": {"size_mb": 60, "load": det(3)}}
    data["nodes"][0].update(
        name="g", replicas=2, workers=2, service=det(2),
        device={"h2d": det(5), "d2h": det(1), "copy_engines": 1},
        model_cache={"memory_mb": 100},
    )
    data["router"] = {"policy": "round_robin"}
    data["failure_handling"] = {"in_flight": "retry", "max_retries": 3}
    data["events"] = [{"type": "failure", "nodes": ["g-0"], "at_s": at, "duration_s": length} for at, length in OUTAGES_S]
    records, result = _records(tmp_path, data)
    everything = result.summary["classes"]["all"]
    assert everything["finished"] == everything["completed"] == 2 * 2000
    assert not everything["dropped"]
    assert len(records) == 2 * 2000 and not records.duplicated(["replication", "request_id"]).any()
    assert records["retries"].max() >= 1
    on_failed = records[records["node"] == "g-0"]
    for at_s, length_s in OUTAGES_S:
        down = (on_failed["end_ms"] > at_s * 1000) & (on_failed["end_ms"] < (at_s + length_s) * 1000)
        assert not down.any()
    retried = records[records["retries"] > 0]
    assert np.allclose(retried["service_ms"], retried["load_ms"] + retried["copy_ms"] + retried["compute_ms"])


def _first_calls_after_an_outage(tmp_path) -> pd.DataFrame:
    """Memory for both models; the node fails at 120 ms, during the very first load (100–150 ms),
    and is back at 1120 ms. Returns the first call of each model after the recovery."""
    data = _two_model_scenario(memory_mb=120, requests=100, warmup_requests=0, replications=1)
    data["failure_handling"] = {"in_flight": "fail"}
    data["events"] = [{"type": "failure", "nodes": ["n"], "at_s": 0.12, "duration_s": 1.0}]
    records, _ = _records(tmp_path, data)
    assert records.loc[records["arrival_ms"] == 100, "dropped"].item() == "node_failure"
    served = _served(records)
    after = served[served["arrival_ms"] > 1120].sort_values("arrival_ms")
    return after.groupby("class").head(1)


def test_a_failed_node_loads_its_models_again(tmp_path):
    """Models resident before the outage, and the load it interrupted, are gone after it."""
    first = _first_calls_after_an_outage(tmp_path)
    assert sorted(first["class"]) == ["a", "b"] and (first["load_ms"] == 50.0).all()


# -- 6. validation ---------------------------------------------------------------------------


def test_model_cache_needs_every_class_to_name_its_model():
    data = _two_model_scenario(memory_mb=100)
    del data["workload"]["classes"][1]["model"]
    with pytest.raises(ScenarioError, match=r"'n' has a model_cache, so every class needs `model`; missing for \['b'\]"):
        scenario_from_dict(data)


def test_a_model_larger_than_the_cache_is_rejected():
    data = _two_model_scenario(memory_mb=100)
    data["models"]["mb"]["size_mb"] = 150
    with pytest.raises(ScenarioError, match=r"models \['mb'\] do not fit in 'n'.s model_cache.memory_mb"):
        scenario_from_dict(data)


def test_a_class_naming_an_unknown_model_is_rejected():
    data = _two_model_scenario(memory_mb=100)
    data["workload"]["classes"][0]["model"] = "typo"
    with pytest.raises(ScenarioError, match=r"class 'a' names model 'typo', which is not in `models` \(ma, mb\)"):
        scenario_from_dict(data)


def test_device_settings_are_validated():
    data = _device_scenario(rate_per_s=10, workers=1, compute_ms=5, device={"h2d": det(1)})
    assert scenario_from_dict(data).nodes[0].device.d2h is None  # a copy may be left out
    data["nodes"][0]["device"] = {"concurrency_slowdown": "processor-sharing"}
    with pytest.raises(ScenarioError, match="concurrency_slowdown"):
        scenario_from_dict(data)
    data["nodes"][0]["device"] = {"h2d": det(1), "d2h": det(1), "copy_engines": 0}
    with pytest.raises(ScenarioError, match="copy_engines"):
        scenario_from_dict(data)


# -- 7. the shipped example ------------------------------------------------------------------


def test_gpu_model_cache_example_runs_with_its_stages(tmp_path):
    scenario = load_scenario(SCENARIOS / "gpu-model-cache.yaml")
    (node,) = scenario.nodes
    assert node.device is not None and node.model_cache is not None and node.workers == 2
    sizes = sorted(model.size_mb for model in scenario.models.values())
    assert len(sizes) == 3
    assert sum(sizes[1:]) <= node.model_cache.memory_mb < sum(sizes)  # any two fit, all three do not
    path = tmp_path / "requests.parquet"
    result = run(scenario, requests=4000, replications=2, records_path=path)
    records = pd.read_parquet(path)
    records = records[records["measured"]]
    everything = result.summary["classes"]["all"]
    assert everything["finished"] == 2 * 4000
    served = _served(records)
    assert (served["copy_ms"] > 0).all() and (served["compute_ms"] > 0).all()
    loads = served[served["load_ms"] > 0]
    assert set(loads["class"]) == {"vision", "tabular", "text"}  # every model is (re)loaded at some point
    assert _max_models_resident_at_once(served) <= 2


def test_a_staged_node_without_waiting_room_is_an_erlang_loss_system():
    """queue_capacity 0 on a device node: an arrival finding a free worker is served, else lost."""
    from simulator.analytic import erlang_b

    device = {"h2d": det(1e-6), "d2h": det(1e-6), "copy_engines": 5}
    data = _device_scenario(rate_per_s=400, workers=5, compute_ms=10, device=device, requests=15000, warmup_requests=1000, replications=10)
    data["workload"]["arrival"] = {"process": "poisson", "rate_per_s": 400}
    data["nodes"][0].update(service={"distribution": "scipy", "name": "expon", "params": {"scale": 10.0}}, queue_capacity=0)
    data["run"]["confidence"] = 0.999
    data["workload"]["classes"][0]["deadline_ms"] = 1e9
    result = run(scenario_from_dict(data), jobs=2)
    missed = result.estimate("deadline_met_ratio")  # the deadline is long: only blocked requests miss it
    blocking = erlang_b(5, 4.0)
    assert 1 - missed.ci_high <= blocking <= 1 - missed.ci_low and missed.ci_high - missed.ci_low < 0.02


def test_concurrency_slowdown_from_the_profile_is_the_measured_ratio():
    from simulator.scenario.nodes import DeviceSpec, ProfileSlowdown
    from simulator.service.slowdown import slowdown_factors

    def factors_of(**fields) -> list[float]:
        slowdown = ProfileSlowdown(bundle=str(bundle_dir), **fields)
        return slowdown_factors(DeviceSpec(h2d=det(0.1), d2h=det(0.1), concurrency_slowdown=slowdown), Path("."))

    bundle_dir = Path(__file__).parent.parent / "profiles" / "cpu-amd-epyc-2c" / "zoo"
    samples = pd.read_parquet(bundle_dir / "samples.parquet")
    compute = samples[(samples["family"] == "cnn") & (samples["variant"] == "fp32") & (samples["stage"] == "compute")
                      & (samples["batch_size"] == 1) & (samples["threads"] == 1)]
    alone = compute.loc[compute["mode"] == "sweep", "latency_ms"].mean()
    two, four = (compute.loc[(compute["mode"] == "concurrent") & (compute["concurrency"] == k), "latency_ms"].mean() for k in (2, 4))
    factors = factors_of(family="cnn", threads=1)
    assert factors == pytest.approx([1.0, two / alone, (two + four) / 2 / alone, four / alone])
    with pytest.raises(ScenarioError, match="has no family 'gpt'"):
        factors_of(family="gpt")
