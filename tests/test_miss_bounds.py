"""Verdicts that hold when misses come in bursts: bounds on effective requests, not on correlated ones.

The queues are exact M/M/1 recursions through latsim's own statistics path (``tests/queue_harness.py``);
the deadline sits at the exact quantile of the sojourn time, so the true miss probability is known.
"""

from __future__ import annotations

import math

import pytest
from scipy.stats import binom

from simulator.metrics.estimators import clopper_pearson, miss_bounds
from simulator.metrics.summary import summarize
from simulator.runner.plan import plan_run
from tests.queue_harness import queue_scenario, replication, sojourn_quantile

import numpy as np


def _verdicts(scenario, seeds: range) -> list[dict]:
    slos = []
    for seed in seeds:
        plan = plan_run(scenario, seed=seed)
        results = [replication(plan, seed, r) for r in range(scenario.run.replications)]
        slos.append(summarize(scenario, seed, scenario.run.requests, results, 0.0)["classes"]["a"]["slo"])
    return slos


def test_zero_misses_bound_the_probability_on_effective_requests_only():
    finished = np.full(100, 400.0)
    lower, upper, effective = miss_bounds(np.zeros(100), finished, 50.0, 0.95)
    assert effective == pytest.approx(40_000 / 50) and lower == 0
    assert upper == pytest.approx(1 - 0.05 ** (1 / 800))  # Clopper–Pearson with 0 of 800 independent trials
    _, upper, effective = miss_bounds(np.zeros(100), finished, math.inf, 0.95)  # correlation unknown: a block is a trial
    assert effective == 100 and upper == pytest.approx(1 - 0.05 ** (1 / 100))
    _, independent = clopper_pearson(0, 40_000, 0.95)
    assert miss_bounds(np.zeros(100), finished, 0.5, 0.95)[1] == pytest.approx(independent)  # never below one request


def test_misses_in_bursts_widen_the_bounds_beyond_independent_ones():
    rng = np.random.default_rng(5)
    misses = np.where(rng.random(400) < 0.05, 40.0, 0.0)  # whole bursts of 40 misses in a block of 1,000
    finished = np.full(400, 1000.0)
    lower, upper, effective = miss_bounds(misses, finished, 1.0, 0.95)
    independent_lower, independent_upper = clopper_pearson(misses.sum(), finished.sum(), 0.95)
    assert effective < finished.sum() / 20
    assert lower < independent_lower and upper > independent_upper
    assert lower < misses.sum() / finished.sum() < upper


def test_a_truly_violated_hard_class_is_not_met_when_its_misses_come_in_busy_periods():
    """M/M/1 at ρ 0.9, deadline at the exact 1 − 2e-4 quantile, miss_tolerance 1e-4: independent Clopper–Pearson
    said "met (0 of 40000 missed)" in 175 of 200 seeds. "met" may come in at most 5 % of seeds: here, at most the
    99.9 % quantile of Binomial(seeds, 0.05)."""
    seeds = 40
    deadline_ms = sojourn_quantile(1, 0.9, 1 - 2e-4)
    scenario = queue_scenario(0.9, 20_000, 2, deadline_ms=deadline_ms, kind="hard", target=None, miss_tolerance=1e-4)
    slos = _verdicts(scenario, range(seeds))
    met = sum(slo["verdict"] == "met" for slo in slos)
    assert met <= binom.ppf(0.999, seeds, 0.05), [slo["verdict"] for slo in slos]
    assert all(slo["miss_probability"]["upper_bound"] > 2e-4 for slo in slos if slo["misses"] == 0)


def test_a_class_whose_truth_is_half_its_tolerance_is_met_with_enough_data():
    """Soft target 0.99 (tolerance 1e-2), true miss probability 5e-3 at ρ 0.5: 40,000 requests suffice. "met" must
    come in at least as often as the 0.1 % quantile of Binomial(seeds, 0.95) allows."""
    seeds = 20
    deadline_ms = sojourn_quantile(1, 0.5, 1 - 5e-3)
    scenario = queue_scenario(0.5, 40_000, 1, deadline_ms=deadline_ms, kind="soft", target=0.99)
    met = sum(slo["verdict"] == "met" for slo in _verdicts(scenario, range(seeds)))
    assert met >= binom.ppf(0.001, seeds, 0.95)
