"""FIFO M/M/c beyond the means: P(wait > 0), waiting- and sojourn-time tails and quantiles, classes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.integrate

from simulator.analytic import (
    erlang_c,
    mm1_mean_wait_ms,
    mmc_fifo_mean_waits_ms,
    mmc_mean_sojourn_ms,
    mmc_mean_wait_ms,
    mmc_sojourn_quantile_ms,
    mmc_sojourn_tail,
    mmc_wait_probability,
    mmc_wait_quantile_ms,
    mmc_wait_tail,
)


def test_call_centre_worked_example():
    """Call Centre Helper, "Erlang C formula – made simple with an easy worked example": 100 calls per
    30 min, 180 s handling time (A = 10 Erlangs): P(wait) = 68.21 % with 11 agents; 79.56 % of calls
    answered within 20 s with 13 agents."""
    arrival, service = 100 / 1_800_000, 1 / 180_000
    assert mmc_wait_probability(11, arrival, service) == pytest.approx(0.6821, abs=5e-5)
    assert 1 - mmc_wait_tail(13, arrival, service, 20_000) == pytest.approx(0.7956, abs=5e-5)


def _gross_harris_sojourn_tail(c: int, arrival: float, service: float, t: float) -> float:
    """Gross & Harris (3rd ed., ch. 2): P(T > t) = e^{−μt}[1 + C (1 − e^{−μt(c−1−a)}) / (c − 1 − a)]."""
    a = arrival / service
    shape = c - 1 - a
    growth = -math.expm1(-service * t * shape) / shape if shape else service * t
    return math.exp(-service * t) * (1 + erlang_c(c, a) * growth)


@pytest.mark.parametrize("c, arrival, service", [(3, 0.21, 0.1), (2, 0.05, 0.1), (3, 0.2, 0.1), (8, 0.7, 0.1), (20, 0.19, 0.01)])
def test_sojourn_tail_is_the_textbook_formula(c, arrival, service):
    """Includes a = c − 1 exactly (3, 0.2, 0.1), where the textbook form is a 0/0 limit."""
    for t in (0.0, 1.0, 7.5, 30.0, 200.0):
        assert mmc_sojourn_tail(c, arrival, service, t) == pytest.approx(
            _gross_harris_sojourn_tail(c, arrival, service, t), rel=1e-9
        )


def test_one_server_sojourn_is_exponential():
    """M/M/1 FIFO: T ~ Exp(μ − λ), so P(T > t) = e^{−(μ−λ)t} and the p-quantile is −ln(1 − p)/(μ − λ)."""
    arrival, service = 0.07, 0.1
    for t in (0.0, 5.0, 50.0, 400.0):
        assert mmc_sojourn_tail(1, arrival, service, t) == pytest.approx(math.exp(-0.03 * t), rel=1e-12)
    assert mmc_sojourn_quantile_ms(1, arrival, service, 0.99) == pytest.approx(-math.log(0.01) / 0.03, rel=1e-9)
    assert mmc_mean_sojourn_ms(1, arrival, service) == pytest.approx(mm1_mean_wait_ms(arrival, service) + 10.0)


def test_sojourn_tail_integrates_to_the_mean_sojourn():
    c, arrival, service = 4, 0.33, 0.1
    integral, _ = scipy.integrate.quad(lambda t: mmc_sojourn_tail(c, arrival, service, t), 0, math.inf)
    assert integral == pytest.approx(mmc_mean_wait_ms(c, arrival, service) + 1 / service, rel=1e-8)
    assert integral == pytest.approx(mmc_mean_sojourn_ms(c, arrival, service), rel=1e-8)


@pytest.mark.parametrize("level", [0.01, 0.5, 0.9, 0.99, 0.999, 0.99999])
def test_sojourn_quantile_inverts_the_tail(level):
    c, arrival, service = 5, 0.42, 0.1
    quantile = mmc_sojourn_quantile_ms(c, arrival, service, level)
    assert mmc_sojourn_tail(c, arrival, service, quantile) == pytest.approx(1 - level, rel=1e-9)
    # T ≥ W and T ≥ the own service time S ~ Exp(μ), so its quantiles bound theirs
    assert quantile >= mmc_wait_quantile_ms(c, arrival, service, level)
    assert quantile >= -math.log(1 - level) / service


def test_wait_quantile():
    """The wait has an atom 1 − C at zero: quantiles up to that level are 0, above it they invert the tail."""
    c, arrival, service = 3, 0.21, 0.1
    no_wait = 1 - erlang_c(c, arrival / service)
    assert mmc_wait_quantile_ms(c, arrival, service, no_wait * 0.999) == 0.0
    for level in (0.8, 0.95, 0.999):
        assert level > no_wait
        quantile = mmc_wait_quantile_ms(c, arrival, service, level)
        assert quantile > 0 and mmc_wait_tail(c, arrival, service, quantile) == pytest.approx(1 - level, rel=1e-12)
    assert mmc_wait_quantile_ms(1, 0.05, 0.1, 0.9) == pytest.approx(math.log(0.5 / 0.1) / 0.05)  # M/M/1 by hand


def test_fifo_classes_wait_like_the_pooled_stream():
    rates, service = [0.1, 0.15, 0.05], 0.1
    assert mmc_fifo_mean_waits_ms(4, rates, service) == pytest.approx([mmc_mean_wait_ms(4, 0.3, service)] * 3)
    assert mmc_fifo_mean_waits_ms(1, np.array([0.02]), 0.1) == pytest.approx([mm1_mean_wait_ms(0.02, 0.1)])


def test_more_servers_never_increase_the_wait():
    """At a = 4.5 Erlangs, from 5 to 40 servers: every wait and sojourn measure is non-increasing."""
    arrival, service = 0.45, 0.1
    measures = np.array(
        [
            [
                mmc_wait_probability(c, arrival, service),
                mmc_mean_wait_ms(c, arrival, service),
                mmc_mean_sojourn_ms(c, arrival, service),
                mmc_wait_quantile_ms(c, arrival, service, 0.99),
                mmc_sojourn_quantile_ms(c, arrival, service, 0.99),
                mmc_sojourn_tail(c, arrival, service, 25.0),
            ]
            for c in range(5, 41)
        ]
    )
    assert np.all(np.diff(measures, axis=0) <= 1e-12)
    assert measures[0, 1] > 10 * measures[3, 1]  # and strictly so where it matters


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: mmc_sojourn_tail(2, 0.2, 0.1, 1.0), "M/M/2: utilization ρ = 1 ≥ 1"),
        (lambda: mmc_sojourn_tail(2, 0.05, 0.1, -1.0), "t_ms"),
        (lambda: mmc_sojourn_tail(0, 0.05, 0.1, 1.0), "servers"),
        (lambda: mmc_sojourn_quantile_ms(2, 0.05, 0.1, 1.0), "level"),
        (lambda: mmc_sojourn_quantile_ms(2, 0.05, 0.1, 0.0), "level"),
        (lambda: mmc_sojourn_quantile_ms(2, 0.05, -0.1, 0.5), "service_per_ms"),
        (lambda: mmc_sojourn_quantile_ms(2, 0.3, 0.1, 0.5), "≥ 1"),
        (lambda: mmc_wait_quantile_ms(2, 0.05, 0.1, math.nan), "level"),
        (lambda: mmc_wait_quantile_ms(2, -0.05, 0.1, 0.5), "arrival_per_ms"),
        (lambda: mmc_wait_probability(2.0, 0.05, 0.1), "servers must be an integer"),
        (lambda: mmc_mean_sojourn_ms(1, 0.05, 0.0), "service_per_ms"),
        (lambda: mmc_fifo_mean_waits_ms(2, [0.1, 0.0], 0.1), r"arrival_per_ms\[1\]"),
        (lambda: mmc_fifo_mean_waits_ms(2, 0.1, 0.1), "arrival_per_ms must be a non-empty sequence"),
        (lambda: mmc_fifo_mean_waits_ms(2, [0.1, 0.15], 0.1), "≥ 1"),
    ],
)
def test_invalid_inputs_raise_clear_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()
