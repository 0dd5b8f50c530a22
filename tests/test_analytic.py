"""Closed-form queueing results against textbook numbers and independent formulas.

Each check would fail on a plausible wrong formula (a missing factor 2, (1 − σ_k)² in place of
(1 − σ_{k−1})(1 − σ_k), an Erlang B/C mix-up, a tail with cμ instead of cμ − λ, ...).
"""

from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np
import pytest
import scipy.integrate
import scipy.stats

from simulator.analytic import (
    allen_cunneen_mean_wait_ms,
    che_characteristic_time,
    che_lru_hit_ratio,
    erlang_b,
    erlang_c,
    kingman_mean_wait_ms,
    mg1_mean_wait_ms,
    mm1_mean_wait_ms,
    mmc_mean_queue_length,
    mmc_mean_wait_ms,
    mmc_priority_mean_waits_ms,
    mmc_utilization,
    mmc_wait_tail,
    priority_mg1_mean_waits_ms,
    zipf_popularity,
)


def _erlang_c_direct(c: int, a: float) -> float:
    """Erlang C from its textbook sum (fine for small c), independent of the B recursion."""
    top = a**c / math.factorial(c) * c / (c - a)
    return top / (sum(a**k / math.factorial(k) for k in range(c)) + top)


# -- Erlang B and C ------------------------------------------------------------------------------


def test_erlang_b_textbook_values():
    assert erlang_b(1, 1.0) == pytest.approx(0.5)
    assert erlang_b(2, 1.0) == pytest.approx(0.2)  # (1/2) / (1 + 1 + 1/2)
    assert erlang_b(10, 5.0) == pytest.approx(0.018385, abs=1e-6)  # Erlang B table
    assert erlang_b(3, 0.0) == 0.0


@pytest.mark.parametrize("c, a", [(1, 0.3), (5, 4.0), (50, 45.0), (2000, 1900.0), (300, 400.0)])
def test_erlang_b_is_the_truncated_poisson_tail(c, a):
    """B(c, a) = P(N = c) / P(N ≤ c) for N ~ Poisson(a); stable where a^c/c! overflows."""
    expected = scipy.stats.poisson.pmf(c, a) / scipy.stats.poisson.cdf(c, a)
    assert erlang_b(c, a) == pytest.approx(expected, rel=1e-9)


def test_erlang_c_textbook_values():
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3)
    assert erlang_c(1, 0.7) == pytest.approx(0.7)  # M/M/1: P(wait) = ρ
    for c, a in [(2, 1.5), (3, 2.1), (5, 4.0), (10, 8.0)]:
        assert erlang_c(c, a) == pytest.approx(_erlang_c_direct(c, a), rel=1e-12)
        assert erlang_c(c, a) > erlang_b(c, a)  # waiting is likelier than blocking


def test_erlang_c_large_system_is_finite():
    value = erlang_c(2000, 1900.0)
    assert 0 < value < 1 and math.isfinite(value)


# -- M/M/1 and M/M/c ------------------------------------------------------------------------------


def test_mm1_mean_wait():
    arrival, service = 0.07, 0.1
    rho = arrival / service
    assert mm1_mean_wait_ms(arrival, service) == pytest.approx(rho / (service - arrival))
    assert mm1_mean_wait_ms(0.05, 0.1) == pytest.approx(10.0)
    assert mmc_mean_queue_length(1, 0.05, 0.1) == pytest.approx(0.5**2 / 0.5)  # Lq = ρ²/(1 − ρ)


def test_mm2_textbook_values():
    """M/M/2 with ρ = 1/2: Lq = 2ρ³/(1 − ρ²) = 1/3, Wq = Lq/λ."""
    arrival, service = 0.1, 0.1  # a = 1 Erlang on 2 servers
    assert mmc_mean_queue_length(2, arrival, service) == pytest.approx(1 / 3)
    assert mmc_mean_wait_ms(2, arrival, service) == pytest.approx(1 / 3 / arrival)
    assert mmc_utilization(2, arrival, service) == pytest.approx(0.5)


def test_mmc_wait_tail():
    c, arrival, service = 3, 0.21, 0.1
    probability = erlang_c(c, arrival / service)
    assert mmc_wait_tail(c, arrival, service, 0.0) == pytest.approx(probability)
    assert mmc_wait_tail(c, arrival, service, 10.0) == pytest.approx(probability * math.exp(-0.09 * 10.0))
    # E[W] = ∫ P(W > t) dt
    integral, _ = scipy.integrate.quad(lambda t: mmc_wait_tail(c, arrival, service, t), 0, math.inf)
    assert integral == pytest.approx(mmc_mean_wait_ms(c, arrival, service), rel=1e-8)


# -- M/G/1 (Pollaczek–Khinchine), Kingman, Allen–Cunneen ---------------------------------------


def test_pk_exponential_service_is_mm1():
    assert mg1_mean_wait_ms(0.06, 10.0, 2 * 10.0**2) == pytest.approx(mm1_mean_wait_ms(0.06, 0.1))


def test_pk_deterministic_service_is_half_of_mm1():
    assert mg1_mean_wait_ms(0.06, 10.0, 10.0**2) == pytest.approx(mm1_mean_wait_ms(0.06, 0.1) / 2)
    assert mg1_mean_wait_ms(0.05, 10.0, 100.0) == pytest.approx(5.0)  # ρD / (2(1 − ρ))


def test_pk_lognormal_service():
    s, scale = 0.8, 6.0
    service = scipy.stats.lognorm(s=s, scale=scale)
    mean, second = scale * math.exp(s**2 / 2), scale**2 * math.exp(2 * s**2)
    assert service.mean() == pytest.approx(mean) and service.moment(2) == pytest.approx(second)
    arrival = 0.07
    expected = arrival * second / (2 * (1 - arrival * mean))
    assert mg1_mean_wait_ms(arrival, service.mean(), service.moment(2)) == pytest.approx(expected)
    assert expected == pytest.approx(10.7488, abs=1e-4)


def test_kingman_is_exact_for_poisson_arrivals():
    """With c_a² = 1, Kingman's formula reduces to Pollaczek–Khinchine."""
    arrival, mean = 0.06, 10.0
    assert kingman_mean_wait_ms(arrival, mean, 1.0, 1.0) == pytest.approx(mm1_mean_wait_ms(arrival, 1 / mean))
    assert kingman_mean_wait_ms(arrival, mean, 1.0, 0.0) == pytest.approx(mg1_mean_wait_ms(arrival, mean, mean**2))
    scv = 1.7
    assert kingman_mean_wait_ms(arrival, mean, 1.0, scv) == pytest.approx(mg1_mean_wait_ms(arrival, mean, (1 + scv) * mean**2))
    # D/D/1 never waits; a textbook G/G/1 number: ρ = 0.8, c_a² = 0.5, c_s² = 2 → 4 · 1.25 · 5 ms
    assert kingman_mean_wait_ms(arrival, mean, 0.0, 0.0) == 0.0
    assert kingman_mean_wait_ms(0.16, 5.0, 0.5, 2.0) == pytest.approx(25.0)


def test_allen_cunneen():
    c, arrival, mean = 4, 0.3, 10.0
    assert allen_cunneen_mean_wait_ms(c, arrival, mean, 1.0, 1.0) == pytest.approx(mmc_mean_wait_ms(c, arrival, 1 / mean))
    assert allen_cunneen_mean_wait_ms(c, arrival, mean, 1.0, 0.0) == pytest.approx(mmc_mean_wait_ms(c, arrival, 1 / mean) / 2)
    assert allen_cunneen_mean_wait_ms(1, 0.16, 5.0, 0.5, 2.0) == pytest.approx(kingman_mean_wait_ms(0.16, 5.0, 0.5, 2.0))
    # M/M/2 at a = 1: Wq = 1/3 / λ; with (c_a² + c_s²)/2 = 0.25 it is a quarter of that
    assert allen_cunneen_mean_wait_ms(2, 0.1, 10.0, 0.5, 0.0) == pytest.approx(0.25 * (1 / 3) / 0.1)


# -- priority queues ----------------------------------------------------------------------------


def test_cobham_one_class_is_pk():
    assert priority_mg1_mean_waits_ms([0.05], [10.0], [170.0]) == pytest.approx([mg1_mean_wait_ms(0.05, 10.0, 170.0)])


def test_cobham_two_classes_textbook():
    """λ = 0.02 each; D = 10 ms and Exp(mean 20 ms): W0 = 9, W = 9/0.8, 9/(0.8 · 0.4)."""
    waits = priority_mg1_mean_waits_ms([0.02, 0.02], [10.0, 20.0], [100.0, 800.0])
    assert waits == pytest.approx([11.25, 28.125])


def test_cobham_three_classes_conservation_law():
    """Kleinrock's conservation law: Σ ρ_k W_k = ρ W0 / (1 − ρ), whatever the order."""
    rates, means, seconds = [0.01, 0.02, 0.015], [8.0, 12.0, 10.0], [64.0, 300.0, 180.0]
    rho = sum(r * m for r, m in zip(rates, means))
    residual = sum(r * s for r, s in zip(rates, seconds)) / 2
    for order in ([0, 1, 2], [2, 0, 1], [1, 2, 0]):
        waits = priority_mg1_mean_waits_ms([rates[i] for i in order], [means[i] for i in order], [seconds[i] for i in order])
        weighted = sum(rates[i] * means[i] * w for i, w in zip(order, waits))
        assert weighted == pytest.approx(rho * residual / (1 - rho))
    waits = priority_mg1_mean_waits_ms(rates, means, seconds)
    assert waits[0] < waits[1] < waits[2]


def test_cobham_same_service_averages_to_fifo():
    rates = [0.01, 0.02, 0.03]
    waits = priority_mg1_mean_waits_ms(rates, [10.0] * 3, [250.0] * 3)
    average = float(np.dot(rates, waits)) / sum(rates)
    assert average == pytest.approx(mg1_mean_wait_ms(sum(rates), 10.0, 250.0))


def test_mmc_priority_textbook():
    """M/M/2, μ = 0.1, λ = 0.05 + 0.05: C = 1/3, C/(cμ) = 5/3, σ = 0.25, 0.5."""
    waits = mmc_priority_mean_waits_ms(2, [0.05, 0.05], 0.1)
    assert waits == pytest.approx([(5 / 3) / 0.75, (5 / 3) / (0.75 * 0.5)])
    assert float(np.mean(waits)) == pytest.approx(mmc_mean_wait_ms(2, 0.1, 0.1))


def test_mmc_priority_one_server_is_cobham():
    rates, service = [0.02, 0.03, 0.01], 0.1
    mean = 1 / service
    assert mmc_priority_mean_waits_ms(1, rates, service) == pytest.approx(
        priority_mg1_mean_waits_ms(rates, [mean] * 3, [2 * mean**2] * 3)
    )


def test_mmc_priority_averages_to_fifo():
    rates, service = [0.1, 0.15, 0.05], 0.1
    waits = mmc_priority_mean_waits_ms(4, rates, service)
    assert float(np.dot(rates, waits)) / sum(rates) == pytest.approx(mmc_mean_wait_ms(4, sum(rates), service))


# -- Che approximation of LRU ---------------------------------------------------------------------


def test_che_uniform_popularity_is_exact():
    """With N equally popular items, an LRU cache of C items hits C/N of the time."""
    assert che_lru_hit_ratio(np.ones(200), 50) == pytest.approx(0.25, rel=1e-9)
    t = che_characteristic_time(np.ones(200), 50)
    assert 200 * (1 - math.exp(-t / 200)) == pytest.approx(50, rel=1e-9)


def test_che_characteristic_time_solves_its_equation():
    p = zipf_popularity(1000, 0.9)
    assert p.sum() == pytest.approx(1.0) and p[0] / p[1] == pytest.approx(2**0.9)
    t = che_characteristic_time(p, 120)
    assert float(np.sum(1 - np.exp(-p * t))) == pytest.approx(120, rel=1e-9)


def _lru_hit_ratio_simulated(p: np.ndarray, size: int, requests: int, seed: int) -> float:
    keys = np.random.default_rng(seed).choice(len(p), requests, p=p)
    cache: OrderedDict[int, None] = OrderedDict()
    hits = 0
    warmup = requests // 10
    for index, key in enumerate(keys.tolist()):
        if key in cache:
            cache.move_to_end(key)
            hits += index >= warmup
        else:
            cache[key] = None
            if len(cache) > size:
                cache.popitem(last=False)
    return hits / (requests - warmup)


@pytest.mark.parametrize("exponent, size", [(0.8, 100), (1.1, 30)])
def test_che_matches_a_simulated_lru_cache(exponent, size):
    p = zipf_popularity(1000, exponent)
    simulated = _lru_hit_ratio_simulated(p, size, 200_000, seed=7)
    assert che_lru_hit_ratio(p, size) == pytest.approx(simulated, abs=0.01)


def test_che_hit_ratio_grows_with_the_cache():
    p = zipf_popularity(500, 0.8)
    ratios = [che_lru_hit_ratio(p, size) for size in (10, 50, 100, 250, 499)]
    assert all(a < b for a, b in zip(ratios, ratios[1:]))
    assert che_lru_hit_ratio(p, 500) == 1.0


# -- validation -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: mm1_mean_wait_ms(0.1, 0.1), "ρ = 1 ≥ 1"),
        (lambda: mm1_mean_wait_ms(0.2, 0.1), "≥ 1"),
        (lambda: mmc_mean_wait_ms(2, 0.2, 0.1), "≥ 1"),
        (lambda: erlang_c(3, 3.0), "≥ 1"),
        (lambda: mm1_mean_wait_ms(-0.1, 0.1), "arrival_per_ms must be a positive"),
        (lambda: mm1_mean_wait_ms(0.05, 0.0), "service_per_ms must be a positive"),
        (lambda: mmc_mean_wait_ms(0, 0.05, 0.1), "servers must be an integer ≥ 1"),
        (lambda: erlang_b(2.5, 1.0), "servers must be an integer ≥ 1"),
        (lambda: erlang_b(2, -1.0), "offered_load must be a non-negative"),
        (lambda: erlang_b(2, math.nan), "offered_load"),
        (lambda: mmc_wait_tail(2, 0.05, 0.1, -1.0), "t_ms"),
        (lambda: mg1_mean_wait_ms(0.05, 10.0, 50.0), "not a valid second moment"),
        (lambda: mg1_mean_wait_ms(0.1, 10.0, 200.0), "≥ 1"),
        (lambda: priority_mg1_mean_waits_ms([0.01, 0.02], [10.0], [100.0]), "one entry per class"),
        (lambda: priority_mg1_mean_waits_ms([0.05, 0.06], [10.0, 10.0], [100.0, 100.0]), "≥ 1"),
        (lambda: mmc_priority_mean_waits_ms(2, [], 0.1), "arrival_per_ms must be a non-empty sequence"),
        (lambda: kingman_mean_wait_ms(0.05, 10.0, -1.0, 1.0), "arrival_scv"),
        (lambda: allen_cunneen_mean_wait_ms(2, 0.05, 0.0, 1.0, 1.0), "mean_service_ms"),
        (lambda: che_lru_hit_ratio([0.5, -0.1, 0.6], 1), "popularity"),
        (lambda: che_lru_hit_ratio([], 1), "popularity"),
        (lambda: che_lru_hit_ratio([1, 1, 1], 0), "cache_size"),
        (lambda: che_characteristic_time([1, 1, 1], 3), "holds every one"),
        (lambda: zipf_popularity(0, 1.0), "items"),
    ],
)
def test_invalid_inputs_raise_clear_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()
