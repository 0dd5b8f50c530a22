"""Service time as a function of batch size, from times measured at a few batch sizes.

For each measured size the mean (or p99) is taken; two monotone non-decreasing shapes are fitted
(:mod:`simulator.fitting.curves`): piecewise-linear through the isotonic fit of the points, and
a + b·B^c. Points are weighted by count / value² (relative errors, each point as precise as its
sample count). With 4 or more sizes the shape with the lower leave-one-out error over the
interior sizes is chosen (ties go to piecewise-linear); with fewer, piecewise-linear is used.
The curve only answers inside the measured range of sizes: extrapolating batch cost is the kind
of guess a capacity plan must not hide.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
from numpy.typing import ArrayLike

from simulator.distributions.curves import (
    AffinePower,
    BatchCurve,
    PiecewiseLinear,
    Statistic,
)
from simulator.fitting.curves import (
    fit_affine_power,
    fit_piecewise_linear,
    leave_one_out_error,
)

__all__ = ["BatchCurve", "best_batch_size", "fit_batch_curve"]
_MIN_SIZES_FOR_POWER = 4


def _summaries(
    samples_by_batch: Mapping[int, ArrayLike], statistic: Statistic
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if statistic not in ("mean", "p99"):
        raise ValueError(f"statistic must be 'mean' or 'p99', got {statistic!r}")
    if not isinstance(samples_by_batch, Mapping) or len(samples_by_batch) < 2:
        raise ValueError("samples_by_batch must map at least 2 batch sizes to their measured times")
    sizes, values, counts = [], [], []
    for size in sorted(samples_by_batch):
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
            raise ValueError(f"batch sizes must be integers ≥ 1, got {size!r}")
        times = np.asarray(samples_by_batch[size], dtype=float).ravel()
        if times.size == 0 or not np.all(np.isfinite(times)) or np.any(times <= 0):
            raise ValueError(f"batch size {size}: need at least one finite time > 0 ms")
        sizes.append(float(size))
        values.append(times.mean() if statistic == "mean" else np.quantile(times, 0.99))
        counts.append(times.size)
    return np.array(sizes), np.array(values), np.array(counts, dtype=float)


def fit_batch_curve(samples_by_batch: Mapping[int, ArrayLike], statistic: Statistic = "mean") -> BatchCurve:
    """Fit the monotone batch-size curve of the per-size ``statistic`` (mean or p99) of measured times."""
    sizes, values, counts = _summaries(samples_by_batch, statistic)
    weights = counts / values**2
    piecewise = fit_piecewise_linear(sizes, values, weights)
    if sizes.size < _MIN_SIZES_FOR_POWER:
        return BatchCurve(piecewise, statistic, sizes, values)
    errors = {
        PiecewiseLinear.kind: leave_one_out_error(fit_piecewise_linear, sizes, values, weights),
        AffinePower.kind: leave_one_out_error(fit_affine_power, sizes, values, weights),
    }
    if errors[AffinePower.kind] < errors[PiecewiseLinear.kind]:
        return BatchCurve(fit_affine_power(sizes, values, weights), statistic, sizes, values, errors)
    return BatchCurve(piecewise, statistic, sizes, values, errors)


def best_batch_size(curve: BatchCurve, latency_budget_ms: float, batch_sizes: Iterable[int] | None = None) -> int:
    """The throughput-optimal batch size (max B / time(B)) among ``batch_sizes`` (default: every
    integer in the measured range) whose time fits ``latency_budget_ms``; ties go to the smaller B."""
    budget = float(latency_budget_ms)
    if not budget > 0:
        raise ValueError(f"latency_budget_ms must be > 0, got {latency_budget_ms!r}")
    sizes = (
        np.arange(curve.min_batch_size, curve.max_batch_size + 1)
        if batch_sizes is None
        else np.array(sorted(set(batch_sizes)))
    )
    if sizes.size == 0:
        raise ValueError("batch_sizes is empty")
    times = curve.time_ms(sizes)
    fits = times <= budget
    if not fits.any():
        raise ValueError(
            f"no batch size meets the {budget:g} ms budget: the fastest, B={int(sizes[np.argmin(times)])}, "
            f"takes {times.min():.4g} ms"
        )
    throughput = np.where(fits, sizes / times, -np.inf)
    return int(sizes[int(np.argmax(throughput))])
