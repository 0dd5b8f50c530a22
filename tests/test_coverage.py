"""The intervals cover at their nominal rate: 95 % intervals contain the true value in 92–98 % of runs.

M/M/1 queues at ρ = 0.5 and 0.9 are run with many seeds, with R = 10 replications (intervals over
replications) and with R = 1 (batch means of one run), and every interval of the mean wait and of
the p99 latency is checked against the exact value. The queue itself is simulated by Lindley's
recursion in numpy (exact for FIFO M/M/1, and fast); everything after it is latsim's own
statistics path — the recorder with its fine batches and warm-up rule, then ``summarize`` — the
same code every ``latsim run`` goes through. The simulator's agreement with queueing theory is
tested separately (``test_theory.py``).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from simulator.metrics.collector import RequestChunk, ReplicationRecorder
from simulator.metrics.summary import summarize
from simulator.random_streams import stream
from simulator.runner.plan import plan_run
from simulator.runner.replication import run_zone
from simulator.scenario.loader import scenario_from_dict
from tests.helpers import base_scenario

MEAN_SERVICE_MS = 10.0
SEEDS = 200
NOMINAL = 0.95
LOW, HIGH = 0.92, 0.98


def _scenario(rho: float, requests: int, replications: int):
    data = base_scenario()
    data["run"] = {"requests": requests, "replications": replications, "confidence": NOMINAL, "seed": 1}
    data["workload"]["arrival"]["rate_per_s"] = rho / MEAN_SERVICE_MS * 1000
    data["workload"]["classes"][0]["deadline_ms"] = 1e9
    return scenario_from_dict(data)


def _replication(plan, seed: int, replication: int) -> dict:
    """One M/M/1 replication by Lindley's recursion, reduced exactly as ``simulate_replication`` reduces one."""
    total, batch_size, warmup = run_zone(plan, None)
    rng = stream(seed, replication, "coverage")
    rate_per_ms = plan.scenario.workload.arrival.rate_per_s / 1000
    gaps_ms = rng.exponential(1 / rate_per_ms, total)
    service_ms = rng.exponential(MEAN_SERVICE_MS, total)
    arrival_ms = np.cumsum(gaps_ms)
    drift = np.concatenate(([0.0], np.cumsum(service_ms[:-1] - gaps_ms[1:])))
    wait_ms = drift - np.minimum(np.minimum.accumulate(drift), 0.0)  # Lindley, starting empty
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
        class_names=["a"], relative_deadlines_ms=[1e9], measured=total, batch_size=batch_size, node_count=1,
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


CASES = [  # ρ, replications, requests per replication ("short runs": seconds of simulated time)
    (0.5, 10, 4_000),
    (0.9, 10, 60_000),
    (0.5, 1, 40_000),
    (0.9, 1, 600_000),
]


@pytest.mark.parametrize("rho, replications, requests", CASES, ids=[f"rho{r}-R{n}" for r, n, _ in CASES])
def test_95_percent_intervals_cover_92_to_98_percent(rho, replications, requests):
    scenario = _scenario(rho, requests, replications)
    rate_per_ms, mu = rho / MEAN_SERVICE_MS, 1 / MEAN_SERVICE_MS
    truth = {
        "wait_ms.mean": rho / (mu - rate_per_ms),  # M/M/1
        "latency_ms.p99": -math.log(0.01) / (mu - rate_per_ms),  # the sojourn time is Exp(μ − λ)
    }
    covered = {metric: 0 for metric in truth}
    for seed in range(SEEDS):
        plan = plan_run(scenario, seed=seed)
        results = [_replication(plan, seed, r) for r in range(replications)]
        summary = summarize(scenario, seed, requests, results, rho)
        for metric, value in truth.items():
            group, name = metric.split(".", 1)
            interval = summary["classes"]["a"][group][name]
            covered[metric] += interval["ci_low"] <= value <= interval["ci_high"]
    rates = {metric: hits / SEEDS for metric, hits in covered.items()}
    print(f"\nρ={rho} R={replications} n={requests}: coverage over {SEEDS} seeds", rates)
    for metric, rate in rates.items():
        assert LOW <= rate <= HIGH, f"{metric}: {rate:.3f} of {SEEDS} intervals cover the exact value"
