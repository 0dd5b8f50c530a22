"""Argument checks shared by the closed-form formulas: a bad input is a ValueError naming it."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np


def positive(name: str, value: float) -> float:
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return value


def non_negative(name: str, value: float) -> float:
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a non-negative finite number, got {value!r}")
    return value


def count(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be an integer ≥ 1, got {value!r}")
    return int(value)


def probability(name: str, value: float) -> float:
    """A probability strictly between 0 and 1, as a quantile level must be."""
    value = float(value)
    if not 0 < value < 1:
        raise ValueError(f"{name} must lie strictly between 0 and 1, got {value!r}")
    return value


def each(check: Callable[[str, float], float], name: str, values: Sequence[float]) -> np.ndarray:
    """Apply ``check`` to every entry of a non-empty sequence, naming a bad one as ``name[k]``."""
    if isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, np.ndarray)) or len(values) == 0:
        raise ValueError(f"{name} must be a non-empty sequence, got {values!r}")
    return np.array([check(f"{name}[{k}]", value) for k, value in enumerate(values)])


def matching_lengths(unit: str, **sequences: Sequence[float]) -> int:
    """The common length (≥ 1) of sequences that hold one entry per ``unit`` (class, station)."""
    lengths = {len(values) for values in sequences.values()}
    if len(lengths) != 1 or 0 in lengths:
        raise ValueError(f"{', '.join(sequences)} need one entry per {unit} (≥ 1 {unit}), got lengths {sorted(lengths)}")
    return lengths.pop()


def stable(rho: float, what: str) -> float:
    """ρ itself when ρ < 1; an unstable system has no steady state, so it is an error, never an infinite wait."""
    if rho >= 1:
        raise ValueError(
            f"{what}: utilization ρ = {rho:.4g} ≥ 1, the queue grows without bound and no steady state exists"
        )
    return rho


def stable_utilization(arrival_per_ms: float, mean_service_ms: float, what: str) -> float:
    """Validated ρ = λ E[S] < 1 of a single-server queue."""
    return stable(positive("arrival_per_ms", arrival_per_ms) * positive("mean_service_ms", mean_service_ms), what)


def second_moment(name: str, mean_ms: float, second_moment_ms2: float) -> float:
    """E[S²], which can be no smaller than E[S]² (the variance is non-negative)."""
    second_moment_ms2 = non_negative(name, second_moment_ms2)
    if second_moment_ms2 < mean_ms**2 * (1 - 1e-12):
        raise ValueError(f"{name} = {second_moment_ms2!r} is below mean² = {mean_ms**2!r}: not a valid second moment")
    return second_moment_ms2


def third_moment(name: str, mean_ms: float, second_moment_ms2: float, third_moment_ms3: float) -> float:
    """E[S³], which can be no smaller than E[S²]²/E[S] (Cauchy–Schwarz on S^½ · S^{3/2})."""
    third_moment_ms3 = non_negative(name, third_moment_ms3)
    floor = second_moment_ms2**2 / mean_ms
    if third_moment_ms3 < floor * (1 - 1e-12):
        raise ValueError(f"{name} = {third_moment_ms3!r} is below E[S²]²/E[S] = {floor!r}: not a valid third moment")
    return third_moment_ms3
