"""Open Jackson networks and tandems against per-station M/M/c results and conservation laws."""

from __future__ import annotations

import numpy as np
import pytest

from simulator.analytic import (
    JacksonNetwork,
    jackson_network,
    mm1_mean_wait_ms,
    mmc_mean_sojourn_ms,
    mmc_utilization,
    tandem_mmc_mean_sojourn_ms,
)


def test_tandem_is_the_sum_of_its_stages():
    servers, arrival, service = [1, 2, 4], 0.15, [0.2, 0.08, 0.05]
    expected = sum(mmc_mean_sojourn_ms(c, arrival, mu) for c, mu in zip(servers, service))
    assert tandem_mmc_mean_sojourn_ms(servers, arrival, service) == pytest.approx(expected, rel=1e-12)
    assert tandem_mmc_mean_sojourn_ms([1], 0.05, [0.1]) == pytest.approx(mm1_mean_wait_ms(0.05, 0.1) + 10.0)


def test_single_station_with_feedback():
    """M/M/1 where a job returns with probability p: λ = γ/(1 − p) and the total time is 1/((1 − p)μ − γ)."""
    gamma, p, mu = 0.03, 0.4, 0.1
    network = jackson_network([gamma], [[p]], [1], [mu])
    assert network.throughput_per_ms == pytest.approx((gamma / (1 - p),))
    assert network.mean_response_time_ms == pytest.approx(1 / ((1 - p) * mu - gamma))


def test_general_network_against_independent_computations():
    external = [0.1, 0.05, 0.0]
    routing = [[0.0, 0.5, 0.3], [0.0, 0.0, 1.0], [0.2, 0.0, 0.0]]
    servers, service = [2, 1, 3], [0.1, 0.2, 0.07]
    network = jackson_network(external, routing, servers, service)
    assert isinstance(network, JacksonNetwork)

    throughput = np.zeros(3)  # traffic equations by fixed-point iteration, not by a linear solve
    for _ in range(500):
        throughput = np.asarray(external) + np.asarray(routing).T @ throughput
    assert network.throughput_per_ms == pytest.approx(tuple(throughput), rel=1e-12)
    for i in range(3):
        assert network.utilization[i] == pytest.approx(mmc_utilization(servers[i], throughput[i], service[i]))
        assert network.mean_sojourn_ms[i] == pytest.approx(mmc_mean_sojourn_ms(servers[i], throughput[i], service[i]))
        assert network.mean_number[i] == pytest.approx(throughput[i] * network.mean_sojourn_ms[i])
    # what enters leaves; Little's law end to end
    leaving = throughput @ (1 - np.asarray(routing).sum(axis=1))
    assert leaving == pytest.approx(sum(external))
    assert network.mean_response_time_ms == pytest.approx(sum(network.mean_number) / sum(external))


def test_a_station_no_job_reaches_is_idle():
    network = jackson_network([0.05, 0.0], [[0.0, 0.0], [0.0, 0.0]], [1, 3], [0.1, 0.2])
    assert network.throughput_per_ms[1] == 0.0 and network.utilization[1] == 0.0 and network.mean_number[1] == 0.0
    assert network.mean_sojourn_ms[1] == pytest.approx(5.0)
    assert network.mean_response_time_ms == pytest.approx(mm1_mean_wait_ms(0.05, 0.1) + 10.0)


def test_more_servers_never_slow_a_tandem():
    times = [tandem_mmc_mean_sojourn_ms([c, c], 0.35, [0.1, 0.12]) for c in range(4, 12)]
    assert all(a >= b for a, b in zip(times, times[1:]))


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: tandem_mmc_mean_sojourn_ms([1, 1, 2], 0.15, [0.2, 0.1, 0.1]), r"unstable stations.*station 1: ρ = 1.5"),
        (lambda: jackson_network([0.1], [[0.5]], [1], [0.15]), r"station 0: ρ = 1.33"),
        (lambda: tandem_mmc_mean_sojourn_ms([1, 1], 0.0, [0.2, 0.2]), "arrival_per_ms"),
        (lambda: tandem_mmc_mean_sojourn_ms([1, 0], 0.1, [0.2, 0.2]), r"servers\[1\]"),
        (lambda: tandem_mmc_mean_sojourn_ms([1, 1], 0.1, [0.2]), "one entry per station"),
        (lambda: tandem_mmc_mean_sojourn_ms([], 0.1, []), "one entry per station"),
        (lambda: jackson_network([0.1, 0.0], [[0.0, 1.0]], [1, 1], [0.2, 0.2]), "routing must be a 2×2 matrix"),
        (lambda: jackson_network([0.1, 0.0], [[0.0, -0.1], [0.0, 0.0]], [1, 1], [0.2, 0.2]), "routing entries"),
        (lambda: jackson_network([0.1, 0.0], [[0.0, 0.7], [0.6, 0.6]], [1, 1], [0.2, 0.2]), r"routing rows \[1\]"),
        (lambda: jackson_network([0.1, 0.0, 0.0], [[0, 0, 0], [0, 0, 1], [0, 1, 0]], [1] * 3, [0.2] * 3), "not an open network"),
        (lambda: jackson_network([0.0, 0.0], [[0.0, 0.0], [0.0, 0.0]], [1, 1], [0.2, 0.2]), "external_arrival_per_ms must have a positive"),
        (lambda: jackson_network([0.1, -0.1], [[0.0, 0.0], [0.0, 0.0]], [1, 1], [0.2, 0.2]), r"external_arrival_per_ms\[1\]"),
        (lambda: jackson_network([0.1, 0.0], [[0.0, 0.0], [0.0, 0.0]], [1, 1], [0.2, 0.0]), r"service_per_ms\[1\]"),
    ],
)
def test_invalid_inputs_raise_clear_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()
