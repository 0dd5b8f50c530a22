"""Checks shared by every fitter: a usable 1-D sample of times, or a ValueError that says why not."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

MIN_SAMPLES = 10


def validated_samples(samples_ms: ArrayLike, name: str = "samples_ms", min_n: int = MIN_SAMPLES) -> np.ndarray:
    """A float copy of a 1-D array of finite times ≥ 0 with at least ``min_n`` values, not all equal."""
    values = np.array(samples_ms, dtype=float, copy=True)
    if values.ndim != 1:
        raise ValueError(f"{name} must be a 1-D sequence of times in ms, got shape {values.shape}")
    if values.size < min_n:
        raise ValueError(f"{name}: need at least {min_n} samples to fit, got {values.size}")
    bad = ~np.isfinite(values)
    if bad.any():
        raise ValueError(
            f"{name}: {int(bad.sum())} value(s) are not finite (NaN or inf), "
            f"e.g. at index {int(np.flatnonzero(bad)[0])}"
        )
    if np.any(values < 0):
        raise ValueError(f"{name}: times must be ≥ 0 ms, got minimum {values.min():g}")
    if values.min() == values.max():
        raise ValueError(
            f"{name}: all {values.size} samples equal {values[0]:g} ms; that is a constant (deterministic) "
            "time, which has no distribution to fit"
        )
    return values


def positive_samples(samples_ms: ArrayLike, name: str = "samples_ms", min_n: int = MIN_SAMPLES) -> np.ndarray:
    """Like :func:`validated_samples`, and every value > 0 (models on log time need it)."""
    values = validated_samples(samples_ms, name, min_n)
    zeros = int(np.count_nonzero(values == 0))
    if zeros:
        raise ValueError(
            f"{name}: {zeros} sample(s) are exactly 0 ms; this model works on log time and needs every value > 0"
        )
    return values


def check_probability(value: float, name: str) -> float:
    """A confidence level or similar, strictly inside (0, 1)."""
    number = float(value)
    if not 0.0 < number < 1.0:
        raise ValueError(f"{name} must lie strictly between 0 and 1, got {value!r}")
    return number


def check_count(value: int, name: str, minimum: int) -> int:
    """An integer count ≥ ``minimum`` (resamples, replications, lags)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer ≥ {minimum}, got {value!r}")
    return int(value)
