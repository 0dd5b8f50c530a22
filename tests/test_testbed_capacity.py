"""latsim testbed capacity: the bisection finds the bracket of the true maximum rate, and the SLO text is checked."""

from __future__ import annotations

import math

import pytest

from simulator.testbed.capacity import LatencySlo, parse_slo, search_capacity
from simulator.testbed.errors import TestbedError


def _mm1_probe(service_ms: float) -> tuple[callable, float]:
    """An exact M/M/1 probe: p99 of the sojourn ln(100) / (μ − λ); the rate where it equals 25 ms is the answer."""
    mu_per_s = 1000.0 / service_ms

    def probe(rate_per_s: float, _repeat: int) -> tuple[float, bool]:
        return (math.log(100) / (mu_per_s - rate_per_s) * 1000.0 if rate_per_s < mu_per_s else math.inf), True

    return probe, mu_per_s - math.log(100) / 0.025


@pytest.mark.parametrize(("low", "high"), [(50.0, 90.0), (10.0, 30.0), (70.0, 1000.0)])
def test_the_bracket_holds_the_true_maximum_rate(low: float, high: float) -> None:
    probe, truth = _mm1_probe(service_ms=5.0)  # μ = 200/s: p99 ≤ 25 ms up to 15.8/s
    found = search_capacity(probe, LatencySlo("p99", 25.0), low, high, repeats=2, tolerance=0.01)
    assert found["stopped"] is None
    assert found["low_per_s"] <= truth < found["high_per_s"]
    assert (found["high_per_s"] - found["low_per_s"]) / found["low_per_s"] <= 0.01
    assert all(point["met"] == (point["rate_per_s"] <= truth) for point in found["points"])


def test_invalid_runs_do_not_decide_and_a_rate_without_any_ends_the_search() -> None:
    def probe(rate_per_s: float, repeat: int) -> tuple[float, bool]:
        return (10.0, True) if rate_per_s < 100 else (1.0, False)  # the sender falls behind above 100/s

    found = search_capacity(probe, LatencySlo("p50", 20.0), 50.0, 400.0, repeats=2, tolerance=0.05)
    assert found["low_per_s"] == 50.0 and found["high_per_s"] is None and "no valid run" in found["stopped"]


@pytest.mark.parametrize("text", ["p99<=25", "p99 <= 25 ms", "mean<=3.5", "p99.9<=100"])
def test_slo_text(text: str) -> None:
    assert parse_slo(text).bound_ms > 0


@pytest.mark.parametrize("text", ["p98<=25", "p99<25", "p99<=0", "p99<=nan", "p99<=1e12", ""])
def test_bad_slo_text_is_refused(text: str) -> None:
    with pytest.raises(TestbedError, match="STATISTIC<=MS"):
        parse_slo(text)
