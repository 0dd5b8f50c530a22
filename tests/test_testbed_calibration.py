"""The calibration's concurrency model: how much of each kernel ran beside others, and the slowdown
by the number of kernels running that explains the kernel times; and the occupancy, counted as the
model counts it, that the overhead is fitted on (no server needed)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("aiohttp")

from simulator.testbed.calibrate import concurrency_shares, concurrency_slowdown, server_occupancy  # noqa: E402


def kernels(*intervals: tuple[float, float]) -> pd.DataFrame:
    return pd.DataFrame({"kernel_start_ms": [start for start, _ in intervals], "kernel_end_ms": [end for _, end in intervals]})


def test_shares_are_the_time_each_kernel_spent_beside_others():
    calls = kernels((0.0, 2.0), (1.0, 3.0), (4.0, 5.0), (4.5, 4.75))
    assert concurrency_shares(calls, 2) == pytest.approx(np.array([[0.5, 0.5], [0.5, 0.5], [0.75, 0.25], [0.0, 1.0]]))
    assert concurrency_shares(calls, 1) == pytest.approx(np.ones((4, 1)))  # more running than workers: clipped


def test_three_kernels_at_once_and_back_to_back_calls():
    calls = kernels((0.0, 3.0), (1.0, 2.0), (1.5, 2.5), (3.0, 4.0))  # the last starts as the first ends
    assert concurrency_shares(calls, 3) == pytest.approx(np.array([
        [(1.0 + 0.5) / 3, (0.5 + 0.5) / 3, 0.5 / 3],
        [0.0, 0.5, 0.5],
        [0.0, 0.5 / 1.0, 0.5 / 1.0],
        [1.0, 0.0, 0.0],
    ]))


def test_the_slowdown_that_made_the_kernel_times_is_recovered():
    rng = np.random.default_rng(4)
    shares = rng.dirichlet([2.0, 1.0, 0.5], size=4000)
    solo_ms = rng.lognormal(0.0, 0.2, size=4000)
    kernel_ms = solo_ms * (shares @ np.array([1.0, 2.3, 3.1]))
    assert concurrency_slowdown(shares, kernel_ms) == pytest.approx([1.0, 2.3, 3.1], rel=0.03)


def test_the_slowdown_never_falls_and_a_concurrency_seldom_seen_keeps_the_factor_below_it():
    rng = np.random.default_rng(5)
    shares = np.column_stack([np.full(1000, 0.6), np.full(1000, 0.4), np.zeros(1000)])
    shares[0] = [0.995, 0.0, 0.005]  # three kernels at once: 5 µs of one call
    kernel_ms = rng.lognormal(0.0, 0.1, size=1000) * (shares @ np.array([1.0, 0.8, 9.0]))  # faster beside another?
    assert concurrency_slowdown(shares, kernel_ms) == [1.0, 1.0, 1.0]


def test_occupancy_counts_the_requests_enqueued_and_not_yet_handed_back_when_a_call_could_start():
    """One worker: a arrives to an idle server; b and c wait behind it; b's worker took it 0.25 ms after a was handed
    back (its hand-off); d comes to an idle server again. A reply still being written does not count."""
    table = pd.DataFrame({
        "enqueue_ms": [0.0, 1.0, 1.5, 9.0],
        "dequeue_ms": [0.0, 2.25, 4.0, 9.0],
        "handoff_ms": [0.0, 0.25, 0.0, np.nan],
        "worker_done_ms": [2.0, 4.0, 6.0, 10.0],
    }, index=["a", "b", "c", "d"])
    assert server_occupancy(table).tolist() == [1, 2, 1, 1]  # b starts at 2.0 with c waiting; c at 4.0 alone
