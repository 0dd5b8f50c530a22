"""GI/M/1: σ = A*(μ(1 − σ)) against known roots, and ``latsim analyze`` against the simulation for renewal arrivals."""

from __future__ import annotations

import math

import pytest

import simulator.analytic as analytic
from simulator import run, scenario_from_dict
from tests.test_analyze import report_of, scenario, value

MU = 0.1  # per ms: exponential service of mean 10 ms


@pytest.mark.parametrize(
    "gaps, rho, sigma",
    [
        (analytic.gamma_gaps(20.0, 1.0), 0.5, 0.5),  # M/M/1: σ = ρ
        (analytic.gamma_gaps(20.0, 2.0), 0.5, (3 - math.sqrt(5)) / 2),  # E2/M/1 at ρ ½: σ(2 − σ)² = 1
        (analytic.deterministic_gaps(20.0), 0.5, 0.2031878700),  # D/M/1: σ = e^{−2(1−σ)}
        (analytic.deterministic_gaps(10 / 0.9), 0.9, 0.8068998),  # D/M/1 at ρ 0.9: σ = e^{−(1−σ)/0.9}
    ],
)
def test_sigma_is_the_known_root(gaps, rho, sigma):
    queue = analytic.gim1(gaps, rho * MU, MU)
    assert queue.sigma == pytest.approx(sigma, rel=1e-6)
    assert queue.sigma == pytest.approx(gaps(MU * (1 - queue.sigma)), abs=1e-12)  # the equation itself
    assert queue.mean_wait_ms == pytest.approx(queue.sigma / (MU * (1 - queue.sigma)))
    assert queue.wait_tail(queue.wait_quantile_ms(0.99)) == pytest.approx(0.01)


def test_gap_laws_have_their_means_and_mixtures_solve_too():
    """Each transform is 1 at 0 and falls with slope −mean; hyperexponential and uniform gaps give a root in (0, 1)
    that the plain fixed-point iteration from 0 reaches as well."""
    laws = {
        "hyperexponential": (analytic.hyperexponential_gaps([0.5, 0.5], [10.0, 30.0]), 20.0),
        "uniform": (analytic.uniform_gaps(0.0, 40.0), 20.0),
        "gamma": (analytic.gamma_gaps(20.0, 0.5), 20.0),
        "round-robin": (analytic.round_robin_gaps(analytic.gamma_gaps(10.0, 1.0), 2), 20.0),
        "random split": (analytic.random_split_gaps(analytic.gamma_gaps(10.0, 1.0), 0.5), 20.0),
    }
    for name, (gaps, mean_ms) in laws.items():
        h = 1e-7
        assert gaps(0.0) == pytest.approx(1.0) and (1 - gaps(h)) / h == pytest.approx(mean_ms, rel=1e-4), name
        sigma = 0.0
        for _ in range(5000):
            sigma = gaps(MU * (1 - sigma))
        assert analytic.gim1(gaps, 1 / mean_ms, MU).sigma == pytest.approx(sigma, rel=1e-8), name
    assert analytic.gim1(laws["random split"][0], 0.05, MU).sigma == pytest.approx(0.5)  # a thinned Poisson stream is Poisson
    with pytest.raises(ValueError, match="stable only below load 1"):
        analytic.gim1(analytic.deterministic_gaps(5.0), 0.2, MU)


def test_analyze_gives_gi_m_1_for_renewal_arrivals_at_one_exponential_server():
    data = scenario(rate_per_s=50)
    data["workload"]["arrival"] = {"process": "deterministic", "rate_per_s": 50}
    report = report_of(data)
    prediction = report.get("wait_probability", "a")
    assert prediction.kind == "exact" and "GI/M/1" in prediction.formula
    assert prediction.value == pytest.approx(0.2031878700, rel=1e-6)
    replicated = report_of(scenario(rate_per_s=100, replicas=2) | {"router": {"policy": "round_robin"}})
    assert value(replicated, "wait_probability") == pytest.approx((3 - math.sqrt(5)) / 2)  # Erlang-2 gaps at each replica
    assert replicated.get("wait_ms.mean", "a").kind == "exact"


def test_gi_m_1_agrees_with_simulation():
    """D/M/1 at ρ 0.7: wait probability, mean wait, p90 wait and p99 latency inside the simulation's 0.999 intervals."""
    data = scenario(rate_per_s=70)
    data["workload"]["arrival"] = {"process": "deterministic", "rate_per_s": 70}
    data["run"].update(requests=60000, replications=4, confidence=0.999, seed=23)
    report = report_of(data)
    result = run(scenario_from_dict(data))
    for metric in ("wait_probability", "wait_ms.mean", "wait_ms.p90", "latency_ms.p99"):
        simulated = result.estimate(metric, "a")
        assert simulated.ci_low <= value(report, metric) <= simulated.ci_high, (metric, simulated, value(report, metric))
