"""Preemptive-resume priority M/G/1 against hand computation, limits and conservation laws."""

from __future__ import annotations

import numpy as np
import pytest

from simulator.analytic import (
    mg1_mean_wait_ms,
    mm1_mean_wait_ms,
    preemptive_priority_mg1_mean_sojourns_ms,
    priority_mg1_mean_waits_ms,
)


def test_two_classes_by_hand():
    """λ = 0.02 each; D = 10 ms above Exp(mean 20 ms): σ = 0.2, 0.6.

    T_1 = 10 + (0.02 · 100/2)/0.8 = 11.25; T_2 = 20/0.8 + (1 + 0.02 · 800/2)/(0.8 · 0.4) = 53.125.
    """
    sojourns = preemptive_priority_mg1_mean_sojourns_ms([0.02, 0.02], [10.0, 20.0], [100.0, 800.0])
    assert sojourns == pytest.approx([11.25, 53.125])


def test_one_class_is_pollaczek_khinchine():
    arrival, mean, second = 0.05, 10.0, 170.0
    assert preemptive_priority_mg1_mean_sojourns_ms([arrival], [mean], [second]) == pytest.approx(
        [mg1_mean_wait_ms(arrival, mean, second) + mean]
    )


def test_top_class_never_sees_the_classes_below():
    """The highest class is an M/G/1 queue of its own: adding lower classes leaves its sojourn unchanged."""
    alone = preemptive_priority_mg1_mean_sojourns_ms([0.03], [8.0], [100.0])[0]
    crowded = preemptive_priority_mg1_mean_sojourns_ms([0.03, 0.02, 0.01], [8.0, 15.0, 5.0], [100.0, 500.0, 40.0])
    assert crowded[0] == pytest.approx(alone)
    assert crowded[0] < crowded[1] and crowded[0] < crowded[2]


def test_exponential_classes_conserve_the_mm1_number_in_system():
    """Same Exp(μ) service for all classes: the total number in system is that of M/M/1 whatever the
    order, so Σ λ_k T_k = λ T(M/M/1); the top class sees M/M/1 at its own rate, T_1 = 1/(μ − λ_1)."""
    rates, mean = [0.02, 0.03, 0.025], 10.0
    service = 1 / mean
    sojourns = preemptive_priority_mg1_mean_sojourns_ms(rates, [mean] * 3, [2 * mean**2] * 3)
    total = sum(rates)
    assert float(np.dot(rates, sojourns)) == pytest.approx(total * (mm1_mean_wait_ms(total, service) + mean))
    assert sojourns[0] == pytest.approx(1 / (service - rates[0]))
    # with two classes, the lower one follows from the conservation law alone
    low = preemptive_priority_mg1_mean_sojourns_ms([0.04, 0.03], [mean] * 2, [2 * mean**2] * 2)[1]
    assert 0.04 / (service - 0.04) + 0.03 * low == pytest.approx(0.07 / (service - 0.07))


def test_preemption_helps_the_top_class_and_hurts_the_bottom():
    """Against non-preemptive priority with a long low class: class 1 stops waiting behind it."""
    rates, means, seconds = [0.02, 0.005], [5.0, 60.0], [50.0, 7200.0]
    preemptive = preemptive_priority_mg1_mean_sojourns_ms(rates, means, seconds)
    non_preemptive = [w + m for w, m in zip(priority_mg1_mean_waits_ms(rates, means, seconds), means)]
    assert preemptive[0] < non_preemptive[0]
    assert preemptive[1] > non_preemptive[1]


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: preemptive_priority_mg1_mean_sojourns_ms([0.01], [10.0, 5.0], [100.0]), "one entry per class"),
        (lambda: preemptive_priority_mg1_mean_sojourns_ms([], [], []), "one entry per class"),
        (lambda: preemptive_priority_mg1_mean_sojourns_ms([0.01, -0.01], [10.0, 5.0], [100.0, 25.0]), r"arrival_per_ms\[1\]"),
        (lambda: preemptive_priority_mg1_mean_sojourns_ms([0.01, 0.01], [10.0, 0.0], [100.0, 25.0]), r"mean_service_ms\[1\]"),
        (lambda: preemptive_priority_mg1_mean_sojourns_ms([0.01, 0.01], [10.0, 5.0], [100.0, 20.0]), r"second_moment_ms2\[1\]"),
        (lambda: preemptive_priority_mg1_mean_sojourns_ms([0.05, 0.1], [10.0, 5.0], [100.0, 25.0]), "M/G/1: utilization ρ = 1 ≥ 1"),
    ],
)
def test_invalid_inputs_raise_clear_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()
