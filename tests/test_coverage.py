"""The intervals cover at their nominal rate, and verdicts err no more than they promise: a fixed-seed sample.

Exact M/M/1 and M/M/4 queues (``tests/queue_harness.py``) through latsim's own statistics path, 30 seeds
per cell: every 95 % interval of the mean wait, the p99 latency and the deadline-met ratio must contain the
exact value in as many runs as a 95 % rate gives within its two-sided 99.9 % binomial range. The full
benchmark, 200 seeds per cell over every setting, is ``benchmarks/bench_coverage.py``.
"""

from __future__ import annotations

import pytest
from scipy.stats import binom

from tests.queue_harness import METRICS, coverage, hard_verdicts

SEEDS = 30
NOMINAL = 0.95
LOW, HIGH = binom.ppf(0.0005, SEEDS, NOMINAL), binom.ppf(0.9995, SEEDS, NOMINAL)

CASES = [  # servers, ρ, replications, requests per replication
    (1, 0.5, 10, 4_000),
    (1, 0.9, 1, 600_000),
    (4, 0.9, 10, 60_000),
    (4, 0.5, 1, 40_000),
]


@pytest.mark.parametrize("servers, rho, replications, requests", CASES, ids=[f"MM{c}-rho{r}-R{n}" for c, r, n, _ in CASES])
def test_95_percent_intervals_cover_at_their_nominal_rate(servers, rho, replications, requests):
    counts = coverage(servers, rho, replications, requests, range(SEEDS))
    for metric in METRICS:
        assert LOW <= counts[metric] <= HIGH, f"{metric}: {counts[metric]} of {SEEDS} intervals cover (range {LOW:.0f}–{HIGH:.0f})"


def test_a_hard_class_at_its_tolerance_is_met_in_at_most_5_percent_of_seeds():
    """True miss probability exactly the tolerance (1e-3), M/M/1 at ρ 0.5, 10 × 40,000: "met" is a false claim, so it
    may come in at most as often as the 99.9 % quantile of Binomial(seeds, 0.05)."""
    counts = hard_verdicts(1, 0.5, 10, 40_000, 1.0, 1e-3, range(SEEDS))
    assert counts["met"] <= binom.ppf(0.999, SEEDS, 0.05), counts


def test_a_hard_class_at_half_its_tolerance_is_met_with_enough_data():
    """True miss probability half the tolerance (1e-3), M/M/1 at ρ 0.5, 10 × 40,000 requests: "met" in at least the
    0.1 % quantile of Binomial(seeds, 0.95) of the seeds."""
    counts = hard_verdicts(1, 0.5, 10, 40_000, 0.5, 1e-3, range(SEEDS))
    assert counts["met"] >= binom.ppf(0.001, SEEDS, 0.95), counts
