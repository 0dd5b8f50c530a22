"""The i.i.d. bootstrap of a statistic, computed in chunks so that B × n never fills memory."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

# Resample cells (B × n) held at once: 4·10⁶ doubles = 32 MB.
_MAX_CELLS = 4_000_000


def bootstrap_statistic(
    samples: np.ndarray,
    statistic: Callable[[np.ndarray], np.ndarray],
    resamples: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """``statistic`` (applied row-wise to a (b, n) block of resamples) for ``resamples`` resamples, stacked."""
    n = samples.size
    rows_per_chunk = max(1, _MAX_CELLS // n)
    results = []
    for start in range(0, resamples, rows_per_chunk):
        rows = min(rows_per_chunk, resamples - start)
        results.append(statistic(samples[rng.integers(0, n, size=(rows, n))]))
    return np.concatenate(results, axis=0)


def percentile_interval(values: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """Equal-tailed percentile interval over axis 0."""
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(values, [tail, 1.0 - tail], axis=0)
    return low, high
