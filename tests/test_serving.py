"""The serving system: batching, routing, failures, rolling updates, network, load spikes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from simulator import ScenarioError, UnstableSystemError, run, scenario_from_dict
from tests.helpers import base_scenario

DETERMINISTIC_10MS = {"distribution": "deterministic", "value_ms": 10, "batch_scaling": {"per_extra_item": 0.25}}


def _run(data, **kwargs):
    return run(scenario_from_dict(data), **kwargs)


def _records(tmp_path, data, **kwargs) -> tuple[pd.DataFrame, dict]:
    path = tmp_path / "requests.parquet"
    result = _run(data, records_path=path, **kwargs)
    records = pd.read_parquet(path)
    return records[records["measured"]], result.summary


def test_batches_of_one_reproduce_the_unbatched_run_exactly():
    data = base_scenario()
    data["workload"]["arrival"]["rate_per_s"] = 80
    unbatched = _run(data).to_json()
    data["nodes"][0]["batching"] = {"max_batch_size": 1, "max_queue_delay_ms": 5}
    assert _run(data).to_json() == unbatched


def test_batching_adds_the_capacity_the_service_model_says():
    data = base_scenario()
    data["run"].update(requests=20000, replications=3, confidence=0.999)
    data["workload"]["arrival"]["rate_per_s"] = 300  # 3× what one unbatched worker serves
    data["nodes"][0].update(service=DETERMINISTIC_10MS, queue_capacity=50)
    unbatched = _run(data).estimate("throughput_per_s")
    data["nodes"][0]["batching"] = {"max_batch_size": 4}
    batched_result = _run(data)
    batched = batched_result.estimate("throughput_per_s")
    # Saturated: one request per 10 ms unbatched; four per 10·(1 + 0.25·3) = 17.5 ms batched.
    assert unbatched.ci_low <= 100.0 <= unbatched.ci_high
    assert batched.ci_low <= 4 / 0.0175 <= batched.ci_high
    batch_sizes = batched_result.summary["nodes"]["n"]["batch_sizes"]
    assert batch_sizes["4"] > 0.99 * sum(batch_sizes.values())  # smaller ones only as the queue drains at the end


def test_batching_makes_an_unstable_load_stable():
    data = base_scenario()
    data["workload"]["arrival"]["rate_per_s"] = 150
    data["nodes"][0]["service"] = DETERMINISTIC_10MS
    with pytest.raises(UnstableSystemError):
        _run(data)
    data["nodes"][0]["batching"] = {"max_batch_size": 8, "preferred_batch_sizes": [4], "max_queue_delay_ms": 3}
    summary = _run(data).summary
    throughput = summary["classes"]["all"]["throughput_per_s"]
    assert throughput["ci_low"] <= 150 <= throughput["ci_high"]
    sizes = {int(size): count for size, count in summary["nodes"]["n"]["batch_sizes"].items()}
    assert max(sizes) > 1 and sizes.get(4, 0) > 0
    assert summary["nodes"]["n"]["utilization"]["estimate"] < 1


def test_max_queue_delay_holds_a_free_worker(tmp_path):
    data = base_scenario()
    data["workload"]["arrival"] = {"process": "deterministic", "rate_per_s": 20}  # every 50 ms
    data["nodes"][0].update(service=DETERMINISTIC_10MS, batching={"max_batch_size": 4, "max_queue_delay_ms": 7})
    records, _ = _records(tmp_path, data, requests=500)
    # Alone in the queue, each request waits the full delay for company, then runs alone.
    assert np.allclose(records["wait_ms"], 7.0) and np.allclose(records["batch_wait_ms"], 7.0)
    assert (records["batch_size"] == 1).all()


def test_queue_timeout_drops_requests_when_their_timeout_passes(tmp_path):
    data = base_scenario()
    data["workload"]["arrival"]["rate_per_s"] = 95
    data["nodes"][0]["queue_policy"] = {"default": {"timeout_ms": 30}}
    records, summary = _records(tmp_path, data)
    assert summary["classes"]["all"]["dropped"]["queue_timeout"] > 0
    assert summary["classes"]["all"]["wait_ms"]["max"]["estimate"] <= 30
    reneged = records[records["dropped"] == "queue_timeout"]
    # counted when the timeout passes, not when the request would have reached the head
    assert np.allclose(reneged["end_ms"] - reneged["node_arrival_ms"], 30.0)


def _replicas(router: str, count: int = 3, rate_per_replica: float = 60) -> dict:
    data = base_scenario()
    data["run"].update(requests=40000, replications=6, confidence=0.999)
    data["workload"]["arrival"]["rate_per_s"] = rate_per_replica * count
    data["router"] = {"policy": router}
    data["nodes"][0]["replicas"] = count
    return data


def test_random_routing_over_replicas_is_mm1_per_replica():
    result = _run(_replicas("random"))
    wait = result.estimate("wait_ms.mean")
    # Each replica sees Poisson(60/s) with exponential 10 ms service: Wq = ρ/(μ−λ) = 0.6/40 s.
    assert wait.ci_low <= 15.0 <= wait.ci_high
    for replica in range(3):
        utilization = result.node_estimate("utilization", f"n-{replica}")
        assert utilization.ci_low <= 0.6 <= utilization.ci_high


def test_load_aware_routers_beat_random():
    waits = {router: _run(_replicas(router)).estimate("wait_ms.mean") for router in ("random", "power_of_two", "jsq", "least_work")}
    assert waits["power_of_two"].ci_high < waits["random"].ci_low
    assert waits["jsq"].ci_high < waits["power_of_two"].ci_low
    assert waits["least_work"].ci_high < waits["random"].ci_low


def test_priority_lanes_protect_urgent_requests():
    data = _replicas("jsq", rate_per_replica=60)
    data["run"]["requests"] = 20000
    data["workload"]["classes"] = [
        {"name": "urgent", "share": 0.1, "priority": 0, "deadline_ms": 20, "kind": "firm"},
        {"name": "bulk", "share": 0.9, "priority": 1, "deadline_ms": 500, "kind": "soft", "target": 0.5},
    ]
    plain = _run(data).estimate("wait_ms.mean", "urgent")
    data["router"] = {"policy": "priority_lanes", "urgent_priority": 0, "reserved_replicas": 1}
    lanes = _run(data).estimate("wait_ms.mean", "urgent")
    assert lanes.ci_high < plain.ci_low


@pytest.mark.parametrize("in_flight", ["retry", "fail"])
def test_failure_takes_capacity_and_loses_nothing(tmp_path, in_flight):
    data = _replicas("jsq", count=2, rate_per_replica=40)
    data["run"].update(requests=6000, warmup_requests=0, replications=1)
    data["failure_handling"] = {"in_flight": "retry", "max_retries": 2} if in_flight == "retry" else {"in_flight": "fail"}
    data["events"] = [{"type": "failure", "nodes": ["n-0"], "at_s": 32.5, "duration_s": 30}]  # a request is in flight then
    records, summary = _records(tmp_path, data)
    assert len(records) == 6000 == summary["classes"]["all"]["finished"]
    assert (records.loc[records["retries"] > 0, "lost_ms"] > 0).all()  # time at the failed node is accounted
    reasons = records["dropped"].value_counts().to_dict()
    if in_flight == "retry":
        assert reasons.get("node_failure", 0) == 0 and records["retries"].max() >= 1
    else:
        assert reasons.get("node_failure", 0) > 0 and records["retries"].max() == 0
    served = records[records["dropped"] == ""]
    on_failed = served[served["node"] == "n-0"]
    assert not ((on_failed["end_ms"] > 32_500) & (on_failed["start_ms"] < 62_500)).any()
    during = served[(served["start_ms"] >= 32_500) & (served["start_ms"] < 62_500)]
    assert len(during) > 0 and set(during["node"]) == {"n-1"}


def test_rolling_update_reloads_every_replica_one_at_a_time(tmp_path):
    data = _replicas("jsq", count=3, rate_per_replica=30)
    data["run"].update(requests=12000, warmup_requests=0, replications=1)
    data["events"] = [{"type": "rolling_update", "nodes": ["n"], "start_s": 20, "reload_s": 15, "pause_s": 5}]
    records, summary = _records(tmp_path, data)
    assert summary["classes"]["all"]["completed"] == 12000  # drained, not dropped
    served = records.sort_values("start_ms")
    gaps = []
    for replica in range(3):
        starts = served.loc[served["node"] == f"n-{replica}", "start_ms"].to_numpy()
        longest = np.diff(starts).argmax()
        gaps.append((starts[longest], starts[longest + 1]))
        assert starts[longest + 1] - starts[longest] >= 15_000
    ordered = sorted(gaps)
    assert all(first[1] <= second[0] for first, second in zip(ordered, ordered[1:]))  # one at a time


def test_network_delay_is_added_each_way(tmp_path):
    data = base_scenario()
    data["network"] = {"delay": {"distribution": "deterministic", "value_ms": 2}}
    records, _ = _records(tmp_path, data, requests=2000)
    assert np.allclose(records["network_ms"], 4.0)
    assert np.allclose(records["latency_ms"], records["wait_ms"] + records["service_ms"] + 4.0)


def test_load_spike_multiplies_the_arrival_rate(tmp_path):
    data = base_scenario()
    data["workload"]["arrival"]["rate_per_s"] = 30
    data["run"].update(requests=6000, warmup_requests=0, replications=1)
    data["events"] = [{"type": "load_spike", "at_s": 50, "duration_s": 20, "multiplier": 3}]
    records, _ = _records(tmp_path, data)
    arrivals_s = records["arrival_ms"].to_numpy() / 1000
    inside = np.sum((arrivals_s >= 50) & (arrivals_s < 70)) / 20
    before = np.sum(arrivals_s < 50) / 50
    # Poisson counts: 1800 ± 42 inside (rate 90/s), 1500 ± 39 before (30/s): 4σ bounds.
    assert 90 * (1 - 4 / np.sqrt(1800)) <= inside <= 90 * (1 + 4 / np.sqrt(1800))
    assert 30 * (1 - 4 / np.sqrt(1500)) <= before <= 30 * (1 + 4 / np.sqrt(1500))


def test_unknown_node_in_an_event_is_a_clear_error():
    from simulator import ScenarioError

    data = base_scenario()
    data["events"] = [{"type": "failure", "nodes": ["nope"], "at_s": 1, "duration_s": 1}]
    with pytest.raises(ScenarioError, match="no node or node spec named 'nope'; known: n"):
        _run(data)


def test_random_failures_with_retries_are_reproducible_on_any_executor(tmp_path):
    """Orphans of a failed node are re-routed in a fixed order, so runs repeat request by request."""
    data = _replicas("jsq", count=3, rate_per_replica=70)
    data["run"].update(requests=8000, warmup_requests=0, replications=2)
    data["nodes"][0].update(workers=2, batching={"max_batch_size": 4, "max_queue_delay_ms": 2})
    data["nodes"][0]["service"]["batch_scaling"] = {"per_extra_item": 0.3}
    data["failure_handling"] = {"in_flight": "retry", "max_retries": 3}
    data["events"] = [{"type": "random_failures", "nodes": ["n"], "mtbf_s": 20, "mttr_s": 5}]
    serial, serial_summary = _records(tmp_path, data, jobs=1)
    parallel, parallel_summary = _records(tmp_path, data, jobs=2)
    assert serial["retries"].max() >= 1  # failures did hit requests in flight
    pd.testing.assert_frame_equal(serial, parallel)
    assert serial_summary == parallel_summary


def _partitioned(scheme: str) -> dict:
    data = base_scenario()
    data["run"].update(requests=40000, warmup_requests=0, replications=1)
    data["workload"]["arrival"]["rate_per_s"] = 100
    data["workload"]["keys"] = {"popularity": "zipf", "catalog_size": 1000, "exponent": 0.9}
    data["partitioning"] = {"scheme": scheme, "partitions": 4}
    data["nodes"][0]["replicas"] = 2
    return data


@pytest.mark.parametrize("scheme", ["hash", "range"])
def test_partitions_own_their_keys_and_get_the_traffic_the_popularity_says(tmp_path, scheme):
    from simulator.analytic import zipf_popularity
    from simulator.registry import PARTITIONERS
    from simulator.scenario.cluster import HashPartitioning, RangePartitioning

    records, summary = _records(tmp_path, _partitioned(scheme))
    records["partition"] = records["node"].str.extract(r"-p(\d)-")[0].astype(int)
    assert (records.groupby("key")["partition"].nunique() == 1).all()  # a key lives in one partition
    settings = (HashPartitioning if scheme == "hash" else RangePartitioning)(scheme=scheme, partitions=4)
    shares = PARTITIONERS.build(settings, 1000).shares(zipf_popularity(1000, 0.9))
    counts = records["partition"].value_counts().reindex(range(4), fill_value=0).to_numpy()
    # each partition's count is Binomial(n, share): 3.29 standard errors is its 99.9 % interval
    n = len(records)
    assert np.all(np.abs(counts - n * shares) <= 3.29 * np.sqrt(n * shares * (1 - shares)))
    # the stability check sizes the busiest partition: range puts the hottest keys in partition 0
    assert summary["offered_load"] == pytest.approx(100 * shares.max() / 2 * 10 / 1000)


def test_partitions_need_request_keys():
    data = _partitioned("hash")
    del data["workload"]["keys"]
    with pytest.raises(ScenarioError, match="partitioning: requests are split over partitions by key"):
        scenario_from_dict(data)


def test_failure_shows_in_the_time_series_and_nothing_is_lost():
    data = _replicas("jsq", count=2, rate_per_replica=35)
    data["run"].update(requests=9000, warmup_requests=0, replications=1)
    data["failure_handling"] = {"in_flight": "fail"}
    data["events"] = [{"type": "failure", "nodes": ["n-0"], "at_s": 39.09, "duration_s": 30}]  # mid-service (seed 1)
    result = _run(data, monitor=True)
    series = result.timeseries.set_index("window")
    down = series.loc[40:68]  # windows entirely inside the outage
    assert (down["utilization.n-0"] == 0).all() and (down["queue_length.n-0"] == 0).all()
    assert series.loc[5:38, "utilization.n-0"].mean() > 0.2 and series.loc[70:, "utilization.n-0"].mean() > 0.2
    assert down["utilization.n-1"].mean() > series.loc[5:38, "utilization.n-1"].mean()  # the survivor takes the load
    everyone = result.summary["classes"]["all"]
    served, dropped = everyone["completed"], sum(everyone["dropped"].values())
    assert everyone["dropped"].get("node_failure", 0) > 0
    assert series["arrivals"].sum() == everyone["finished"] == served + dropped == 9000
    assert series["completions"].sum() == served and series["drops"].sum() == dropped


def test_a_draining_node_still_serves_the_batch_it_holds():
    """A rolling update drains a batching node whose queue waits on the batch timer."""
    data = _replicas("round_robin", count=2, rate_per_replica=30)
    data["run"].update(requests=6000, warmup_requests=0, replications=1)
    data["nodes"][0]["service"] = DETERMINISTIC_10MS
    data["nodes"][0]["batching"] = {"max_batch_size": 8, "max_queue_delay_ms": 50}
    data["events"] = [{"type": "rolling_update", "nodes": ["n"], "start_s": 20, "reload_s": 5, "pause_s": 1}]
    summary = _run(data).summary
    assert summary["classes"]["all"]["completed"] == 6000
    served = [summary["nodes"][name]["served"] for name in ("n-0", "n-1")]
    assert sum(served) == 6000 and min(served) > 2000  # both replicas came back and took traffic


def _pipeline(replicas: int = 1) -> dict:
    data = base_scenario()
    data["run"].update(requests=6000, warmup_requests=0, replications=1)
    data["nodes"] = [
        {"name": "embed", "replicas": replicas, "service": {"distribution": "deterministic", "value_ms": 3}},
        {"name": "rank", "replicas": replicas, "service": {"distribution": "deterministic", "value_ms": 5}},
    ]
    data["pipeline"] = {"stages": ["embed", "rank"], "transfer": {"distribution": "deterministic", "value_ms": 1.5}}
    return data


def test_pipeline_records_every_stage_and_adds_the_transfer(tmp_path):
    data = _pipeline()
    data["workload"]["arrival"] = {"process": "deterministic", "rate_per_s": 50}  # nobody ever waits
    records, summary = _records(tmp_path, data)
    assert records.groupby(["stage", "final"]).size().to_dict() == {(0, False): 6000, (1, True): 6000}
    final = records[records["final"]]
    assert np.allclose(final["latency_ms"], 3 + 1.5 + 5) and (final["transfer_ms"] == 1.5).all()
    assert set(records.loc[records["stage"] == 0, "node"]) == {"embed"} and set(final["node"]) == {"rank"}
    assert summary["classes"]["all"]["finished"] == 6000
    assert summary["classes"]["all"]["service_ms"]["mean"]["estimate"] == pytest.approx(8.0)


def test_pipeline_orphans_are_retried_at_their_own_stage(tmp_path):
    data = _pipeline(replicas=2)
    data["router"] = {"policy": "jsq"}
    data["workload"]["arrival"]["rate_per_s"] = 300
    data["failure_handling"] = {"in_flight": "retry", "max_retries": 2}
    data["events"] = [{"type": "failure", "nodes": ["rank-0"], "at_s": 10.0, "duration_s": 10}]
    records, summary = _records(tmp_path, data)
    final = records[records["final"]]
    assert len(final) == 6000 == summary["classes"]["all"]["completed"]
    retried = final[final["retries"] > 0]
    assert len(retried) > 0 and set(retried["node"]) <= {"rank-1"}  # re-routed within the rank stage
    assert set(records.loc[records["stage"] == 1, "node"]) == {"rank-0", "rank-1"}


def test_pipeline_must_name_every_node_spec_once():
    data = _pipeline()
    data["pipeline"]["stages"] = ["embed", "embed"]
    with pytest.raises(ScenarioError, match=r"pipeline.stages: .* must name every node spec exactly once"):
        scenario_from_dict(data)


def test_everything_at_once_is_reproducible_on_any_executor():
    """Cache, partitions, network, batching, a pipeline and disruptions: same seed, same numbers."""
    data = _pipeline(replicas=2)
    data["run"].update(requests=4000, replications=2, warmup_requests=500)
    data["workload"]["arrival"]["rate_per_s"] = 250
    data["workload"]["keys"] = {"popularity": "zipf", "catalog_size": 500, "exponent": 1.0}
    data["cache"] = {"policy": {"policy": "lfu", "capacity_entries": 50}, "hit_latency": {"distribution": "deterministic", "value_ms": 0.2}}
    data["partitioning"] = {"scheme": "hash", "partitions": 2}
    data["network"] = {"delay": {"distribution": "scipy", "name": "gamma", "params": {"a": 3, "scale": 0.2}}}
    data["router"] = {"policy": "power_of_two"}
    data["nodes"][1]["batching"] = {"max_batch_size": 4, "max_queue_delay_ms": 1}
    data["nodes"][1]["service"] = {"distribution": "scipy", "name": "expon", "params": {"scale": 5}, "batch_scaling": {"per_extra_item": 0.4}}
    data["events"] = [
        {"type": "random_failures", "nodes": ["rank"], "mtbf_s": 5, "mttr_s": 1},
        {"type": "rolling_update", "nodes": ["embed"], "start_s": 3, "reload_s": 1},
        {"type": "load_spike", "at_s": 6, "duration_s": 2, "multiplier": 1.5},
    ]
    loaded = scenario_from_dict(data)
    serial = run(loaded, jobs=1, monitor=True)
    parallel = run(loaded, jobs=2, monitor=True)
    assert serial.to_json() == parallel.to_json()
    pd.testing.assert_frame_equal(serial.timeseries, parallel.timeseries)
    assert serial.summary["classes"]["all"]["finished"] == 2 * 4000
