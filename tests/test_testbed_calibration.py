"""The calibration's concurrency model: how much of each kernel ran beside others, and the slowdown
by the number of kernels running that explains the kernel times; and the occupancy, counted as the
model counts it, that the overhead is fitted on; how far a profile may sit from the machine's usual
speed, the bootstrap over its snapshots, and how the band's sources of uncertainty add up (no
server needed)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("aiohttp")

from simulator.fitting.calibration import _drift, concurrency_shares, concurrency_slowdown, server_occupancy  # noqa: E402
from simulator.metrics.bands import combined_band  # noqa: E402
from simulator.testbed.compare import _resampled_profile  # noqa: E402


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


def alternating_windows(windows: int, calls_per_window: int = 20) -> pd.DataFrame:
    """One run's calls in 10 ms windows whose kernels take 0.8 and 1.2 ms by turns: every window's mean is
    0.8 or 1.2 times the run's."""
    window = np.repeat(np.arange(windows), calls_per_window)
    return pd.DataFrame({
        "kernel_start_ms": window * 10.0 + np.tile(np.linspace(0, 9, calls_per_window), windows),
        "kernel_ms": np.where(window % 2 == 0, 0.8, 1.2),
    })


def test_the_profile_drifts_as_far_as_one_window_of_a_snapshot_s_length():
    assert _drift([alternating_windows(40)], window_ms=10.0) == pytest.approx([0.8, 1.2])


def test_windows_with_too_few_calls_say_nothing():
    assert _drift([alternating_windows(40, calls_per_window=5)], window_ms=10.0) == [1.0, 1.0]


def test_a_profile_of_snapshots_is_resampled_a_snapshot_at_a_time(tmp_path):
    sizes = {0: 3, 1: 5, 2: 7}
    profile = pd.DataFrame({"snapshot": np.repeat(list(sizes), list(sizes.values())), "request_id": np.arange(15)})
    profile.to_parquet(tmp_path / "profile.parquet", index=False)
    drawn = set()
    for seed in range(10):
        resample = pd.read_parquet(_resampled_profile(tmp_path, tmp_path / f"resample-{seed}", seed) / "profile.parquet")
        counts = resample["snapshot"].value_counts()
        assert all(count % sizes[snapshot] == 0 for snapshot, count in counts.items())  # whole snapshots only
        assert sum(count // sizes[snapshot] for snapshot, count in counts.items()) == len(sizes)  # as many as there were
        for snapshot, rows in resample.groupby("snapshot"):
            assert sorted(set(rows["request_id"])) == sorted(profile.loc[profile["snapshot"] == snapshot, "request_id"])
        drawn.add(tuple(sorted(counts.items())))
    assert len(drawn) > 1  # the draws differ from seed to seed


def test_a_profile_in_one_snapshot_is_resampled_a_request_at_a_time(tmp_path):
    profile = pd.DataFrame({"request_id": np.arange(50), "kernel_ms": np.arange(50.0)})
    profile.to_parquet(tmp_path / "profile.parquet", index=False)
    resample = pd.read_parquet(_resampled_profile(tmp_path, tmp_path / "resample", 0) / "profile.parquet")
    assert len(resample) == 50 and resample["request_id"].isin(profile["request_id"]).all()
    assert resample["request_id"].duplicated().any()  # drawn with replacement


def test_independent_sources_of_uncertainty_add_in_quadrature():
    assert combined_band(10.0, [[7.0, 12.0]]) == (7.0, 12.0)  # one source: its own range
    low, high = combined_band(10.0, [[7.0, 13.0], [6.0, 14.0], [10.5, 11.0]])
    assert low == pytest.approx(5.0) and high == pytest.approx(10.0 + (9 + 16 + 1) ** 0.5)
    assert combined_band(10.0, [[11.0, 12.0]]) == (10.0, 12.0)  # a source that only errs above widens only above


def test_a_band_stays_within_what_the_statistic_can_be():
    assert combined_band(0.9, [[0.5, 1.0], [0.6, 1.0]], upper_bound=1.0)[1] == 1.0  # a ratio stops at 1
    assert combined_band(1.0, [[0.2], [0.1]])[0] == 0.0  # a latency does not go below 0


def test_unknown_estimates_are_left_out_and_an_unstable_prediction_has_its_variants_range():
    assert combined_band(10.0, [[None, 12.0], [None], []]) == (10.0, 12.0)
    assert combined_band(None, [[7.0, None], [12.0]]) == (7.0, 12.0)
    assert combined_band(None, [[None], []]) == (None, None)
