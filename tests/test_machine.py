"""A node's machine: its speed process, its occupancy slowdown, its per-call overhead, and network
legs — each checked exactly (a factor of 1 changes nothing; a constant delay shifts every latency by
itself) or against queueing theory (Pollaczek–Khinchine; utilization = λ E[S] × the chain's mean
factor; the embedded Markov chain of an M/M/1 whose service rate depends on the queue it starts on)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from simulator import ScenarioError, UnstableSystemError, run, scenario_from_dict
from simulator.model.machine import mean_speed_factor, stationary_distribution
from simulator.scenario.nodes import SpeedSpec
from tests.helpers import base_scenario

RATE_PER_S, MEAN_MS = 50.0, 10.0  # base_scenario: M/M/1 at ρ = 0.5


def _with_node(**node_fields) -> dict:
    data = base_scenario()
    data["nodes"][0].update(node_fields)
    return data


def _records(data: dict, tmp_path, name: str) -> pd.DataFrame:
    path = tmp_path / f"{name}.parquet"
    run(scenario_from_dict(data), records_path=path, engine="simpy")
    return pd.read_parquet(path).sort_values(["replication", "request_id"], ignore_index=True)


def _all(result, metric: str) -> dict:
    group, statistic = metric.split(".")
    return result.summary["classes"]["all"][group][statistic]


def test_a_speed_factor_of_one_and_no_overhead_change_no_request(tmp_path):
    plain = _records(base_scenario(), tmp_path, "plain")
    unit = _records(_with_node(speed={"factors": [1.0, 1.0], "transition": [[0.9, 0.1], [0.2, 0.8]]},
                               overhead={"occupancy": [1], "mean_ms": [0.0]},
                               occupancy_slowdown={"occupancy": [1, 5], "factors": [1.0, 1.0]}), tmp_path, "unit")
    pd.testing.assert_frame_equal(plain, unit)  # their own random streams: the others are untouched


def test_a_constant_speed_factor_scales_every_call():
    data = base_scenario()
    data["workload"]["arrival"]["rate_per_s"] = RATE_PER_S / 2  # ρ = 0.25 at speed 1, 0.5 at speed 2
    slow = run(scenario_from_dict(_speed(data, [2.0], [[1.0]])), engine="simpy")
    doubled = dict(data, nodes=[dict(data["nodes"][0], service={"distribution": "scipy", "name": "expon", "params": {"scale": 2 * MEAN_MS}})])
    reference = run(scenario_from_dict(doubled), engine="simpy")
    for metric in ("latency_ms.mean", "latency_ms.p99", "wait_ms.mean"):
        assert _all(slow, metric)["estimate"] == pytest.approx(_all(reference, metric)["estimate"], rel=1e-9)


def _speed(data: dict, factors: list[float], transition: list[list[float]]) -> dict:
    data = dict(data, nodes=[dict(data["nodes"][0], speed={"factors": factors, "transition": transition})])
    return data


def test_utilization_follows_the_chains_mean_factor():
    spec = {"factors": [0.5, 2.0], "transition": [[0.95, 0.05], [0.1, 0.9]]}
    mean_factor = mean_speed_factor(SpeedSpec(**spec))
    assert stationary_distribution(np.array(spec["transition"])) == pytest.approx([2 / 3, 1 / 3])
    assert mean_factor == pytest.approx(2 / 3 * 0.5 + 1 / 3 * 2.0)
    result = run(scenario_from_dict(_with_node(speed=spec)), engine="simpy")
    utilization = result.summary["nodes"]["n"]["utilization"]
    expected = RATE_PER_S / 1000 * MEAN_MS * mean_factor
    assert utilization["ci_low"] <= expected <= utilization["ci_high"]


def test_slow_stretches_lengthen_the_wait_beyond_iid_service_of_the_same_mean():
    """The same mean factor, switching once per call or persisting: persistence queues more."""
    fast_switching = {"factors": [0.5, 2.0], "transition": [[2 / 3, 1 / 3], [2 / 3, 1 / 3]]}  # i.i.d. states
    persistent = {"factors": [0.5, 2.0], "transition": [[0.99, 0.01], [0.02, 0.98]]}  # the same law, in stretches
    assert mean_speed_factor(SpeedSpec(**fast_switching)) == pytest.approx(mean_speed_factor(SpeedSpec(**persistent)))
    data = base_scenario()
    data["workload"]["arrival"]["rate_per_s"] = 40.0
    data["run"].update(requests=100_000, replications=5)
    iid = _all(run(scenario_from_dict(_speed(data, **fast_switching)), engine="simpy"), "wait_ms.mean")
    stretches = _all(run(scenario_from_dict(_speed(data, **persistent)), engine="simpy"), "wait_ms.mean")
    assert stretches["ci_low"] > iid["ci_high"]


def test_a_constant_overhead_is_an_mg1_with_shifted_service():
    """Exponential service (mean 10 ms) + 2 ms per call: Pollaczek–Khinchine's mean wait."""
    overhead_ms = 2.0
    data = _with_node(overhead={"occupancy": [1], "mean_ms": [overhead_ms]})
    data["run"].update(requests=100_000, replications=5)
    result = run(scenario_from_dict(data), engine="simpy")
    rate_per_ms = RATE_PER_S / 1000
    mean_ms = MEAN_MS + overhead_ms
    second_moment = 2 * MEAN_MS**2 + 2 * MEAN_MS * overhead_ms + overhead_ms**2
    expected_wait_ms = rate_per_ms * second_moment / (2 * (1 - rate_per_ms * mean_ms))
    wait = _all(result, "wait_ms.mean")
    assert wait["ci_low"] <= expected_wait_ms <= wait["ci_high"]


def test_overhead_grows_with_the_requests_at_the_node(tmp_path):
    """Deterministic 1 ms calls, overhead 0 ms alone and 4 ms with 3 or more requests at the node."""
    data = _with_node(service={"distribution": "deterministic", "value_ms": 1.0},
                      overhead={"occupancy": [1, 3], "mean_ms": [0.0, 4.0]})
    data["workload"]["arrival"] = {"process": "poisson", "rate_per_s": 150}
    records = _records(data, tmp_path, "overhead")
    assert set(np.round(records["service_ms"], 9)) <= {1.0, 3.0, 5.0}  # occupancy 1, 2, ≥ 3
    assert {1.0, 3.0, 5.0} <= set(np.round(records["service_ms"], 9))
    alone = records["wait_ms"] == 0
    assert (records.loc[alone & (records["service_ms"] > 1.0 + 1e-9)].shape[0]) < alone.sum()


def test_a_call_is_slowed_by_the_requests_at_the_node_when_it_starts(tmp_path):
    """Deterministic 1 ms calls, 2× slower from 3 requests at the node on (1.5× at 2: linear between points)."""
    data = _with_node(service={"distribution": "deterministic", "value_ms": 1.0},
                      occupancy_slowdown={"occupancy": [1, 3], "factors": [1.0, 2.0]})
    data["workload"]["arrival"] = {"process": "poisson", "rate_per_s": 300}
    records = _records(data, tmp_path, "slowdown")
    assert set(np.round(records["service_ms"], 9)) == {1.0, 1.5, 2.0}
    assert (records.loc[records["wait_ms"] == 0, "service_ms"] < 1.5).mean() > 0.5  # most unqueued calls start alone


def _mm1_slowed_by_occupancy_latency_ms(rate_per_ms: float, mean_ms: float, occupancy: list[float], factors: list[float]) -> float:
    """Mean latency of an M/M/1 whose call, starting with n requests at the node (itself included), takes an
    exponential time of mean ``mean_ms`` × f(n): the chain of the queue a departure leaves behind (the next call
    starts with max(q, 1) and leaves max(q, 1) − 1 plus its arrivals, geometric for an exponential time), whose
    law is the time average too (PASTA; arrivals and departures see the same), then Little."""
    size = 400  # queues beyond are rarer than 0.75^400
    left = np.arange(size)
    starts_with = np.maximum(left, 1)
    slowed_ms = mean_ms * np.interp(starts_with, occupancy, factors)
    p = rate_per_ms * slowed_ms / (1 + rate_per_ms * slowed_ms)  # arrivals during a call: P(k) = (1 − p) p^k
    transition = np.zeros((size, size))
    for q in range(size):
        arrivals = (1 - p[q]) * p[q] ** np.arange(size - starts_with[q] + 1)
        transition[q, starts_with[q] - 1 :] = arrivals
        transition[q, -1] += 1 - arrivals.sum()  # the tail beyond the truncation (negligible here)
    balance = transition.T - np.eye(size)
    balance[-1] = 1.0  # one balance equation is redundant: replaced by Σ law = 1
    law = np.linalg.solve(balance, np.eye(size)[-1])
    return float(law @ left / rate_per_ms)


def test_an_mm1_slowed_by_its_queue_matches_its_embedded_chain():
    """Exponential 10 ms calls at 50/s, 1.5× slower when they start with others waiting: ρ from 0.5 to 0.75."""
    occupancy, factors = [1, 2], [1.0, 1.5]
    data = _with_node(occupancy_slowdown={"occupancy": occupancy, "factors": factors})
    data["run"].update(requests=100_000, replications=6)
    expected_ms = _mm1_slowed_by_occupancy_latency_ms(RATE_PER_S / 1000, MEAN_MS, occupancy, factors)
    plain_ms = MEAN_MS / (1 - RATE_PER_S / 1000 * MEAN_MS)
    assert expected_ms > 1.3 * plain_ms  # the slowdown matters: not a check a plain M/M/1 would pass
    latency = _all(run(scenario_from_dict(data), engine="simpy"), "latency_ms.mean")
    assert latency["ci_low"] <= expected_ms <= latency["ci_high"]


def test_the_load_counts_speed_and_overhead():
    with pytest.raises(UnstableSystemError, match="offered load is 1.0"):
        run(scenario_from_dict(_with_node(speed={"factors": [2.0], "transition": [[1.0]]})))
    with pytest.raises(UnstableSystemError, match="offered load is 1.0"):
        run(scenario_from_dict(_with_node(occupancy_slowdown={"occupancy": [1, 2], "factors": [2.0, 3.0]})))
    with pytest.raises(UnstableSystemError):
        run(scenario_from_dict(_with_node(overhead={"occupancy": [1, 10], "mean_ms": [10.0, 20.0]})))


def test_the_fast_engine_simulates_the_machine_as_the_simpy_model_does():
    """(tests/test_fastpath_random.py compares the two engines request by request on many random machines.)"""
    data = _with_node(speed={"factors": [0.8, 1.5], "transition": [[0.9, 0.1], [0.3, 0.7]], "variation_sigma": [0.0, 0.2]},
                      overhead={"occupancy": [1, 3], "mean_ms": [0.5, 1.5], "variation_sigma": 0.4},
                      occupancy_slowdown={"occupancy": [1, 4], "factors": [1.0, 1.3]})
    fast, simpy = run(scenario_from_dict(data), engine="fast"), run(scenario_from_dict(data), engine="simpy")
    assert {**fast.summary, "engine": "simpy"} == simpy.summary


@pytest.mark.parametrize(
    ("network", "added_ms"),
    [({"response": {"distribution": "deterministic", "value_ms": 5.0}}, 5.0),
     ({"request": {"distribution": "deterministic", "value_ms": 3.0}}, 3.0),
     ({"delay": {"distribution": "deterministic", "value_ms": 2.0}}, 4.0),
     ({"request": {"distribution": "deterministic", "value_ms": 1.0},
       "response": {"distribution": "deterministic", "value_ms": 6.0}}, 7.0)],
)
def test_a_constant_network_leg_shifts_every_latency_by_itself(tmp_path, network, added_ms):
    plain = _records(base_scenario(), tmp_path, "plain")
    delayed = _records(base_scenario(network=network), tmp_path, "delayed")
    assert np.allclose(delayed["latency_ms"], plain["latency_ms"] + added_ms)
    assert np.allclose(delayed["wait_ms"], plain["wait_ms"])
    assert np.allclose(delayed["network_ms"], added_ms)


@pytest.mark.parametrize(
    ("network", "message"),
    [({"delay": {"distribution": "deterministic", "value_ms": 1.0}, "response": {"distribution": "deterministic", "value_ms": 1.0}},
      "not both"),
     ({}, "needs `delay`")],
)
def test_network_legs_are_one_or_the_other(network, message):
    with pytest.raises(ScenarioError, match=message):
        scenario_from_dict(base_scenario(network=network))


@pytest.mark.parametrize("discipline", ["fifo", "priority"])
def test_classes_served_by_one_replayed_model_take_its_times_in_service_order(tmp_path, discipline):
    """A replayed service process is the machine's: whatever the class, the k-th call takes the k-th time."""
    times_ms = 1.0 + 0.01 * np.arange(500)
    pd.DataFrame({"service_ms": times_ms}).to_csv(tmp_path / "times.csv", index=False)
    data = _with_node(service={"distribution": "empirical", "file": "times.csv", "process": "replay"},
                      discipline={"policy": discipline})
    data["workload"]["classes"] = [{"name": "a", "share": 1, "priority": 0}, {"name": "b", "share": 2, "priority": 1}]
    data["workload"]["arrival"]["rate_per_s"] = 250  # ρ ≈ 0.9: queues form, so priority reorders service
    data["run"] = {"requests": 1200, "warmup_requests": 0, "replications": 1, "seed": 3}
    path = tmp_path / "records.parquet"
    run(scenario_from_dict(data, base_dir=tmp_path), records_path=path, engine="simpy")
    records = pd.read_parquet(path).sort_values("start_ms", kind="stable")
    assert set(records["class"]) == {"a", "b"}
    expected = np.resize(times_ms, len(records))  # the sequence from its first time, over and over
    served = len(records) - 10  # the run stops at its last request: calls still in service then are not recorded
    assert records["service_ms"].to_numpy()[:served] == pytest.approx(expected[:served])


def test_a_states_spread_widens_the_service_times_and_keeps_their_mean(tmp_path):
    """Deterministic 1 ms calls at a constant factor 2 with a state spread σ = 0.4: service = 2 × lognormal(σ), mean 2."""
    data = _with_node(service={"distribution": "deterministic", "value_ms": 1.0},
                      speed={"factors": [2.0], "transition": [[1.0]], "variation_sigma": [0.4]})
    data["workload"]["arrival"]["rate_per_s"] = 100
    service_ms = _records(data, tmp_path, "spread")["service_ms"].to_numpy()
    half_width = 3.29 * service_ms.std() / np.sqrt(service_ms.size)  # 99.9 %: the draws are independent
    assert abs(service_ms.mean() - 2.0) < half_width
    logs = np.log(service_ms / 2.0)
    assert abs(logs.std() - 0.4) < 3.29 * 0.4 / np.sqrt(2 * logs.size)  # σ's standard error, normal logs
    assert abs(logs.mean() + 0.08) < 3.29 * 0.4 / np.sqrt(logs.size)  # E[log] = −σ²/2: mean 1


@pytest.mark.parametrize(
    ("curve", "message"),
    [({"occupancy": [1, 2], "factors": [1.0]}, "occupancy and factors need one entry each"),
     ({"occupancy": [2, 1], "factors": [1.0, 1.2]}, "points must increase"),
     ({"occupancy": [1], "factors": [0.0]}, "greater than 0")],
)
def test_an_occupancy_slowdown_is_a_curve_of_positive_factors(curve, message):
    with pytest.raises(ScenarioError, match=message):
        scenario_from_dict(_with_node(occupancy_slowdown=curve))


def test_a_spread_needs_one_sigma_per_state():
    data = _with_node(speed={"factors": [1.0, 2.0], "transition": [[0.9, 0.1], [0.1, 0.9]], "variation_sigma": [0.1]})
    with pytest.raises(ScenarioError, match="one σ per state"):
        scenario_from_dict(data)
