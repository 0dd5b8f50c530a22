"""Loss systems: Erlang B against a published table, Engset against its closed forms and limits."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.special

from simulator.analytic import engset_call_congestion, engset_time_congestion, erlang_b

# The 1 % column of the standard Erlang B table (traffic in Erlangs to three decimals, as printed
# in teletraffic tables); erlang.com's calculator manual works the 15-line entry, 8.108 Erlangs.
ONE_PERCENT = [(5, 1.361), (10, 4.461), (15, 8.108), (20, 12.031), (50, 37.901), (100, 84.064)]


@pytest.mark.parametrize("servers, erlangs", ONE_PERCENT)
def test_erlang_b_reproduces_the_one_percent_table(servers, erlangs):
    """The printed traffic is the 1 % point rounded to 3 decimals: B crosses 0.01 within ±0.0005 Erlang of it."""
    assert erlang_b(servers, erlangs - 0.0005) < 0.01 < erlang_b(servers, erlangs + 0.0005)


def _binomial_blocking(servers: int, sources: int, beta: float) -> float:
    """C(N, c) β^c / Σ_{k≤c} C(N, k) β^k, straight from the definition (fine for small N)."""
    terms = [math.comb(sources, k) * beta**k for k in range(servers + 1)]
    return terms[-1] / sum(terms)


@pytest.mark.parametrize("servers, sources, beta", [(1, 2, 0.5), (3, 10, 0.2), (10, 50, 0.1), (20, 200, 0.05), (4, 4, 1.5)])
def test_engset_matches_the_binomial_definition(servers, sources, beta):
    assert engset_time_congestion(servers, sources, beta) == pytest.approx(_binomial_blocking(servers, sources, beta), rel=1e-12)
    assert engset_call_congestion(servers, sources, beta) == pytest.approx(
        _binomial_blocking(servers, sources - 1, beta), rel=1e-12
    )


@pytest.mark.parametrize("servers, sources, beta", [(3, 10, 0.2), (10, 50, 0.1), (20, 200, 0.05)])
def test_engset_call_congestion_is_the_hypergeometric_form(servers, sources, beta):
    """B = 1 / ₂F₁(1, −c; N − c; −1/β) (valid for N > c), an independent route through scipy."""
    expected = 1 / scipy.special.hyp2f1(1, -servers, sources - servers, -1 / beta)
    assert engset_call_congestion(servers, sources, beta) == pytest.approx(expected, rel=1e-9)


def test_engset_tends_to_erlang_b_with_many_sources():
    """N → ∞ with Nβ = a = 4 Erlangs fixed: both congestions → B(5, 4), the gap shrinking like 1/N."""
    limit = erlang_b(5, 4.0)
    scaled_gaps = []
    for sources in (10, 1_000, 100_000, 10_000_000):
        time_congestion = engset_time_congestion(5, sources, 4.0 / sources)
        call_congestion = engset_call_congestion(5, sources, 4.0 / sources)
        assert call_congestion < time_congestion < limit  # busy sources are silent: less blocking than Poisson
        scaled_gaps.append(sources * (limit - call_congestion) / limit)
    assert scaled_gaps[1:] == pytest.approx([scaled_gaps[-1]] * 3, rel=0.01)  # N · relative gap → constant


def test_engset_with_no_more_sources_than_servers():
    """c ≥ N: a request always finds a server; with c = N the time congestion is P(all N busy) = (β/(1+β))^N."""
    assert engset_call_congestion(4, 4, 1.5) == 0.0
    assert engset_time_congestion(4, 4, 1.5) == pytest.approx((1.5 / 2.5) ** 4)
    assert engset_time_congestion(6, 4, 1.5) == 0.0
    assert engset_call_congestion(3, 1, 2.0) == 0.0
    assert engset_time_congestion(3, 10, 0.0) == 0.0


def test_blocking_falls_with_more_servers():
    assert np.all(np.diff([erlang_b(c, 12.0) for c in range(1, 40)]) < 0)
    assert np.all(np.diff([engset_call_congestion(c, 40, 0.4) for c in range(1, 40)]) < 0)
    assert np.all(np.diff([engset_time_congestion(c, 40, 0.4) for c in range(1, 40)]) < 0)


def test_engset_is_stable_for_large_systems():
    value = engset_call_congestion(2_000, 100_000, 0.02)
    assert 0 < value < 1 and math.isfinite(value)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: engset_time_congestion(0, 10, 0.1), "servers"),
        (lambda: engset_time_congestion(2, 0, 0.1), "sources"),
        (lambda: engset_call_congestion(2, 2.5, 0.1), "sources"),
        (lambda: engset_call_congestion(2, 10, -0.1), "idle_source_load"),
        (lambda: engset_call_congestion(2, 10, math.inf), "idle_source_load"),
        (lambda: engset_call_congestion(True, 10, 0.1), "servers"),
    ],
)
def test_invalid_inputs_raise_clear_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()
