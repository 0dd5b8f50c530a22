"""Lee–Longton and Kingman's G/G/1 bound against exact results, plus M/G/1 processor sharing."""

from __future__ import annotations

import math

import pytest

from simulator.analytic import (
    allen_cunneen_mean_wait_ms,
    kingman_gg1_wait_upper_bound_ms,
    kingman_mean_wait_ms,
    lee_longton_mean_wait_ms,
    mg1_mean_wait_ms,
    mg1_ps_mean_sojourn_ms,
    mg1_ps_sojourn_given_size_ms,
    mm1_mean_wait_ms,
    mmc_mean_sojourn_ms,
    mmc_mean_wait_ms,
)

# -- Lee–Longton M/G/c -----------------------------------------------------------------------------


def test_lee_longton_scales_the_mmc_wait():
    c, arrival, mean = 4, 0.3, 10.0
    assert lee_longton_mean_wait_ms(c, arrival, mean, 1.0) == pytest.approx(mmc_mean_wait_ms(c, arrival, 1 / mean))
    assert lee_longton_mean_wait_ms(c, arrival, mean, 0.0) == pytest.approx(mmc_mean_wait_ms(c, arrival, 1 / mean) / 2)
    assert lee_longton_mean_wait_ms(c, arrival, mean, 3.0) == pytest.approx(2 * mmc_mean_wait_ms(c, arrival, 1 / mean))
    assert lee_longton_mean_wait_ms(c, arrival, mean, 0.5) == pytest.approx(allen_cunneen_mean_wait_ms(c, arrival, mean, 1.0, 0.5))


def test_lee_longton_is_exact_with_one_server():
    """c = 1: (1 + c_s²)/2 · Wq(M/M/1) is the Pollaczek–Khinchine mean wait."""
    arrival, mean, scv = 0.06, 10.0, 2.5
    assert lee_longton_mean_wait_ms(1, arrival, mean, scv) == pytest.approx(mg1_mean_wait_ms(arrival, mean, (1 + scv) * mean**2))


def test_more_servers_never_increase_the_approximate_wait():
    waits = [lee_longton_mean_wait_ms(c, 0.45, 10.0, 0.7) for c in range(5, 30)]
    assert all(a > b for a, b in zip(waits, waits[1:]))


# -- Kingman's G/G/1 upper bound -------------------------------------------------------------------


def test_kingman_bound_by_hand():
    """λ = 0.16, E[S] = 5 (ρ = 0.8), σ_a² = 20, σ_s² = 50: 0.16 · 70 / 0.4 = 28."""
    assert kingman_gg1_wait_upper_bound_ms(0.16, 5.0, 20.0, 50.0) == pytest.approx(28.0)
    assert kingman_gg1_wait_upper_bound_ms(0.16, 5.0, 0.0, 0.0) == 0.0  # D/D/1 never waits


@pytest.mark.parametrize("rho", [0.1, 0.5, 0.9, 0.99])
def test_kingman_bound_holds_for_exact_queues(rho):
    """Above M/M/1 and M/D/1 at every load; above Kingman's approximation by exactly λ(1 + ρ)σ_a²/2."""
    mean = 10.0
    arrival = rho / mean
    exponential = kingman_gg1_wait_upper_bound_ms(arrival, mean, 1 / arrival**2, mean**2)
    assert exponential >= mm1_mean_wait_ms(arrival, 1 / mean)
    assert kingman_gg1_wait_upper_bound_ms(arrival, mean, 1 / arrival**2, 0.0) >= mg1_mean_wait_ms(arrival, mean, mean**2)
    approximation = kingman_mean_wait_ms(arrival, mean, 1.0, 1.0)
    assert exponential - approximation == pytest.approx(arrival * (1 + rho) / arrival**2 / 2)


def test_kingman_bound_is_tight_in_heavy_traffic():
    mean = 10.0
    ratios = [
        kingman_gg1_wait_upper_bound_ms(rho / mean, mean, (mean / rho) ** 2, mean**2) / mm1_mean_wait_ms(rho / mean, 1 / mean)
        for rho in (0.9, 0.99, 0.999)
    ]
    assert ratios[0] > ratios[1] > ratios[2] > 1 and ratios[2] == pytest.approx(1.0, abs=2e-3)


# -- M/G/1 processor sharing -----------------------------------------------------------------------


def test_ps_mean_sojourn_equals_mm1_fifo():
    """Exponential service: PS and FIFO have the same number in system, so the same mean sojourn."""
    arrival, mean = 0.07, 10.0
    assert mg1_ps_mean_sojourn_ms(arrival, mean) == pytest.approx(mmc_mean_sojourn_ms(1, arrival, 1 / mean))
    assert mg1_ps_mean_sojourn_ms(arrival, mean) == pytest.approx(mean / 0.3)


def test_ps_is_linear_in_the_job_size():
    arrival, mean = 0.05, 10.0  # ρ = 0.5: every job takes twice its size on average
    assert [mg1_ps_sojourn_given_size_ms(arrival, mean, x) for x in (0.0, 1.0, 30.0)] == pytest.approx([0.0, 2.0, 60.0])


def test_ps_beats_fifo_for_highly_variable_service():
    """Insensitive PS against FIFO P–K with c_s² = 9: FIFO makes short jobs wait behind long ones."""
    arrival, mean = 0.06, 10.0
    fifo = mg1_mean_wait_ms(arrival, mean, 10 * mean**2) + mean
    assert mg1_ps_mean_sojourn_ms(arrival, mean) < fifo


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: lee_longton_mean_wait_ms(2, 0.05, 10.0, -0.5), "service_scv"),
        (lambda: lee_longton_mean_wait_ms(2, 0.25, 10.0, 1.0), "M/M/2: utilization ρ = 1.25 ≥ 1"),
        (lambda: lee_longton_mean_wait_ms(0, 0.05, 10.0, 1.0), "servers"),
        (lambda: kingman_gg1_wait_upper_bound_ms(0.1, 10.0, 1.0, 1.0), "G/G/1: utilization ρ = 1 ≥ 1"),
        (lambda: kingman_gg1_wait_upper_bound_ms(0.05, 10.0, -1.0, 1.0), "interarrival_variance_ms2"),
        (lambda: kingman_gg1_wait_upper_bound_ms(0.05, 10.0, 1.0, math.nan), "service_variance_ms2"),
        (lambda: kingman_gg1_wait_upper_bound_ms(0.05, 0.0, 1.0, 1.0), "mean_service_ms"),
        (lambda: mg1_ps_mean_sojourn_ms(0.2, 10.0), "M/G/1-PS: utilization ρ = 2 ≥ 1"),
        (lambda: mg1_ps_mean_sojourn_ms(-0.02, 10.0), "arrival_per_ms"),
        (lambda: mg1_ps_sojourn_given_size_ms(0.02, 10.0, -1.0), "size_ms"),
    ],
)
def test_invalid_inputs_raise_clear_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()
