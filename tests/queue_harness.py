"""M/M/1 and M/M/c replications simulated by recursion in numpy, reduced by latsim's own statistics path.

Exact FIFO queues (Lindley's recursion for one server, Kiefer–Wolfowitz's for c), fast enough for the
hundreds of seeds a coverage check needs; everything after the queue is what every ``latsim run`` does:
the recorder with its fine batches and warm-up rule, then ``summarize``. Used by ``tests/test_coverage.py``
and ``benchmarks/bench_coverage.py``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from simulator.metrics.collector import ReplicationRecorder, RequestChunk
from simulator.metrics.summary import summarize
from simulator.random_streams import stream
from simulator.runner.plan import plan_run
from simulator.runner.replication import run_zone
from simulator.scenario.loader import scenario_from_dict
from tests.helpers import base_scenario

MEAN_SERVICE_MS = 10.0


def queue_scenario(rho: float, requests: int, replications: int, servers: int = 1, deadline_ms: float = 1e9, **slo):
    """An M/M/``servers`` scenario at load ``rho`` whose class has ``deadline_ms`` (and ``slo``: kind, target, ...)."""
    data = base_scenario()
    data["run"] = {"requests": requests, "replications": replications, "confidence": 0.95, "seed": 1}
    data["workload"]["arrival"]["rate_per_s"] = rho * servers / MEAN_SERVICE_MS * 1000
    data["workload"]["classes"][0] = {"name": "a", "deadline_ms": deadline_ms, "kind": "soft", "target": 0.5, **slo}
    data["nodes"][0]["workers"] = servers
    return scenario_from_dict(data)


@njit(cache=True)
def _waits_mmc(gaps_ms: np.ndarray, service_ms: np.ndarray, servers: int) -> np.ndarray:
    """Kiefer–Wolfowitz: the sorted vector of the servers' remaining work, seen by each arrival."""
    work = np.zeros(servers)
    waits = np.empty(len(gaps_ms))
    for index in range(len(gaps_ms)):
        for server in range(servers):
            work[server] = max(work[server] - gaps_ms[index], 0.0)
        waits[index] = work[0]
        done = work[0] + service_ms[index]
        position = 0
        while position + 1 < servers and work[position + 1] < done:  # keep the vector sorted
            work[position] = work[position + 1]
            position += 1
        work[position] = done
    return waits


def replication(plan, seed: int, number: int) -> dict:
    """One replication of ``plan`` (an M/M/c ``queue_scenario``), reduced as ``simulate_replication`` reduces one."""
    scenario = plan.scenario
    servers = scenario.nodes[0].workers
    deadline_ms = scenario.workload.classes[0].deadline_ms
    total, batch_size, warmup = run_zone(plan, None)
    rng = stream(seed, number, "coverage")
    rate_per_ms = scenario.workload.arrival.rate_per_s / 1000
    gaps_ms = rng.exponential(1 / rate_per_ms, total)
    service_ms = rng.exponential(MEAN_SERVICE_MS, total)
    arrival_ms = np.cumsum(gaps_ms)
    if servers == 1:
        drift = np.concatenate(([0.0], np.cumsum(service_ms[:-1] - gaps_ms[1:])))
        wait_ms = drift - np.minimum(np.minimum.accumulate(drift), 0.0)  # Lindley, starting empty
    else:
        wait_ms = _waits_mmc(np.concatenate(([0.0], gaps_ms[1:])), service_ms, servers)
    start_ms = arrival_ms + wait_ms
    zeros = np.zeros(total)
    columns = {
        "arrival_ms": arrival_ms, "node_arrival_ms": arrival_ms, "start_ms": start_ms, "service_ms": service_ms,
        "end_ms": start_ms + service_ms, "request_id": np.arange(total), "class_index": np.zeros(total, np.int64),
        "node_index": np.zeros(total, np.int64), "batch_size": np.ones(total, np.int64), "key": -np.ones(total, np.int64),
        "retries": np.zeros(total, np.int64), "stage": np.zeros(total, np.int64),
        **{name: zeros for name in ("batch_wait_ms", "network_ms", "cache_ms", "load_ms", "copy_ms", "lost_ms",
                                    "preempted_ms", "transfer_ms", "upstream_wait_ms", "upstream_service_ms")},
    }
    recorder = ReplicationRecorder(
        class_names=["a"], relative_deadlines_ms=[deadline_ms], measured=total, batch_size=batch_size, node_count=1,
        planned_warmup=warmup, extend_warmup=not plan.warmup_fixed,
    )
    recorder.add(RequestChunk.from_columns(columns, [""] * total))
    cut, transient = recorder.cut()
    starts = arrival_ms[np.arange(cut * batch_size, total, batch_size)]
    return {
        "classes": recorder.class_results(cut),
        "nodes": {},
        "fine_seconds": np.diff(np.append(starts, arrival_ms[-1])) / 1000,
        "measured_requests": total - cut * batch_size,
        "warmup_requests": cut * batch_size,
        "transient_requests": transient * batch_size,
        "simulated_s": arrival_ms[-1] / 1000,
    }


def erlang_c(servers: int, rho: float) -> float:
    """P(wait > 0) in M/M/c at utilization ``rho``."""
    offered = servers * rho
    terms = sum(offered**k / math.factorial(k) for k in range(servers))
    last = offered**servers / math.factorial(servers) / (1 - rho)
    return last / (terms + last)


def sojourn_tail(servers: int, rho: float, t_ms: float) -> float:
    """P(T > t) for the sojourn time T = W + S of FIFO M/M/c (service mean ``MEAN_SERVICE_MS``)."""
    mu = 1 / MEAN_SERVICE_MS
    waiting = erlang_c(servers, rho)
    gamma = servers * mu * (1 - rho)  # W | W > 0 is Exp(cμ(1 − ρ))
    if abs(gamma - mu) < 1e-12:
        return math.exp(-mu * t_ms) * (1 + waiting * mu * t_ms)
    return math.exp(-mu * t_ms) + waiting * mu / (gamma - mu) * (math.exp(-mu * t_ms) - math.exp(-gamma * t_ms))


def sojourn_quantile(servers: int, rho: float, probability: float) -> float:
    """The ``probability`` quantile of the M/M/c sojourn time, by bisection on ``sojourn_tail``."""
    low, high = 0.0, 1.0
    while sojourn_tail(servers, rho, high) > 1 - probability:
        high *= 2
    for _ in range(200):
        middle = (low + high) / 2
        low, high = (middle, high) if sojourn_tail(servers, rho, middle) > 1 - probability else (low, middle)
    return (low + high) / 2


def mean_wait_ms(servers: int, rho: float) -> float:
    """E[W] in M/M/c."""
    return erlang_c(servers, rho) / (servers / MEAN_SERVICE_MS * (1 - rho))


METRICS = ("wait_ms.mean", "latency_ms.p99", "deadline_met_ratio")
MET_RATIO = 0.9  # the deadline of a coverage cell: the exact p90 of the sojourn time


def coverage(servers: int, rho: float, replications: int, requests: int, seeds: range) -> dict[str, int]:
    """How many of ``seeds``' 95 % intervals contain the exact mean wait, p99 latency and deadline-met ratio, and
    how many runs said their batch means were still correlated (``correlated``)."""
    scenario = queue_scenario(rho, requests, replications, servers, sojourn_quantile(servers, rho, MET_RATIO))
    truth = {
        "wait_ms.mean": mean_wait_ms(servers, rho),
        "latency_ms.p99": sojourn_quantile(servers, rho, 0.99),
        "deadline_met_ratio": MET_RATIO,
    }
    counts = dict.fromkeys([*METRICS, "correlated"], 0)
    for seed in seeds:
        summary = _summary(scenario, seed)
        counts["correlated"] += any("still correlated" in note for note in summary["notes"])
        for metric, value in truth.items():
            interval = summary["classes"]["a"]
            for part in metric.split(".", 1):
                interval = interval[part]
            counts[metric] += interval["ci_low"] is not None and interval["ci_low"] <= value <= interval["ci_high"]
    return counts


def hard_verdicts(
    servers: int, rho: float, replications: int, requests: int, truth_over_tolerance: float, tolerance: float, seeds: range
) -> dict[str, int]:
    """Verdicts of a hard class whose deadline is the exact quantile missed with ``truth_over_tolerance`` × ``tolerance``."""
    deadline_ms = sojourn_quantile(servers, rho, 1 - truth_over_tolerance * tolerance)
    scenario = queue_scenario(
        rho, requests, replications, servers, deadline_ms, kind="hard", target=None, miss_tolerance=tolerance
    )
    counts = dict.fromkeys(("met", "violated", "inconclusive"), 0)
    for seed in seeds:
        counts[_summary(scenario, seed)["classes"]["a"]["slo"]["verdict"]] += 1
    return counts


def _summary(scenario, seed: int) -> dict:
    plan = plan_run(scenario, seed=seed)
    results = [replication(plan, seed, r) for r in range(scenario.run.replications)]
    return summarize(scenario, seed, scenario.run.requests, results, 0.0)
