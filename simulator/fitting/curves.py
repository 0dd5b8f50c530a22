"""Fit monotone non-decreasing curves through a few measured points (batch size → time, occupancy → overhead).

Two shapes (:mod:`simulator.distributions.curves`): a piecewise-linear interpolation of the
isotonic (pool-adjacent-violators) fit of the points, and a + b·x^c with b ≥ 0, c > 0 (c = 1:
affine) by weighted least squares. The caller chooses the weights (e.g. count / value² for
relative errors) and compares shapes by leave-one-out error over the interior points (the end
points cannot be predicted without extrapolating).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike

from simulator.distributions.curves import (
    AffinePower,
    Curve,
    PiecewiseLinear,
    curve_from_dict,
    increasing_points,
)

__all__ = [
    "AffinePower",
    "Curve",
    "PiecewiseLinear",
    "curve_from_dict",
    "fit_affine_power",
    "fit_piecewise_linear",
    "isotonic",
    "leave_one_out_error",
]

# Exponents searched for a + b·x^c: a grid on log c, then a bounded refinement around the best.
_EXPONENT_RANGE = (0.05, 4.0)
_EXPONENT_GRID = 41


def isotonic(values: ArrayLike, weights: ArrayLike) -> np.ndarray:
    """Weighted least-squares non-decreasing fit to ``values`` in order (pool adjacent violators)."""
    blocks: list[list[float]] = []  # [weighted mean, weight, count]
    for value, weight in zip(np.asarray(values, dtype=float), np.asarray(weights, dtype=float)):
        blocks.append([value, weight, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            right = blocks.pop()
            left = blocks[-1]
            total = left[1] + right[1]
            left[0] = (left[0] * left[1] + right[0] * right[1]) / total
            left[1] = total
            left[2] += right[2]
    return np.concatenate([np.full(count, mean) for mean, _, count in blocks])


def fit_piecewise_linear(x: ArrayLike, y: ArrayLike, weights: ArrayLike) -> PiecewiseLinear:
    """Knots at the measured x, values the weighted isotonic fit of y."""
    xs, ys = increasing_points(x, y)
    return PiecewiseLinear(xs, isotonic(ys, weights))


def _linear_in_power(xs: np.ndarray, ys: np.ndarray, roots: np.ndarray, exponent: float) -> tuple[float, float, float]:
    """Best (a, b ≥ 0) for a fixed exponent, and its weighted squared error."""
    powered = xs**exponent
    design = np.column_stack([np.ones_like(xs), powered]) * roots[:, None]
    (a, b), *_ = np.linalg.lstsq(design, ys * roots, rcond=None)
    if b < 0:
        a, b = float(np.sum(roots**2 * ys) / np.sum(roots**2)), 0.0
    residual = (a + b * powered - ys) * roots
    return float(a), float(b), float(residual @ residual)


def fit_affine_power(x: ArrayLike, y: ArrayLike, weights: ArrayLike, exponent: float | None = None) -> AffinePower:
    """Weighted least-squares a + b·x^c (b ≥ 0); c fixed when ``exponent`` is given, else searched in [0.05, 4]."""
    from scipy.optimize import minimize_scalar

    xs, ys = increasing_points(x, y)
    roots = np.sqrt(np.asarray(weights, dtype=float))
    if exponent is not None:
        a, b, _ = _linear_in_power(xs, ys, roots, exponent)
        return AffinePower(a, b, exponent)
    if xs.size < 3:
        raise ValueError(f"a + b·x^c has 3 parameters and needs at least 3 points, got {xs.size}")
    grid = np.linspace(math.log(_EXPONENT_RANGE[0]), math.log(_EXPONENT_RANGE[1]), _EXPONENT_GRID)
    errors = [_linear_in_power(xs, ys, roots, math.exp(g))[2] for g in grid]
    best = int(np.argmin(errors))
    bracket = (grid[max(best - 1, 0)], grid[min(best + 1, grid.size - 1)])
    log_c = minimize_scalar(
        lambda g: _linear_in_power(xs, ys, roots, math.exp(g))[2], bounds=bracket, method="bounded"
    ).x
    a, b, _ = _linear_in_power(xs, ys, roots, math.exp(log_c))
    return AffinePower(a, b, math.exp(log_c))


def leave_one_out_error(
    fit: Callable[[np.ndarray, np.ndarray, np.ndarray], Curve], x: ArrayLike, y: ArrayLike, weights: ArrayLike
) -> float:
    """Weighted mean squared error of each interior point predicted by ``fit`` on the others."""
    xs, ys = increasing_points(x, y)
    weight_vector = np.asarray(weights, dtype=float)
    if xs.size < 3:
        raise ValueError("leave-one-out over interior points needs at least 3 points")
    errors = []
    for held in range(1, xs.size - 1):
        keep = np.arange(xs.size) != held
        prediction = float(fit(xs[keep], ys[keep], weight_vector[keep])(xs[held]))
        errors.append(weight_vector[held] * (prediction - ys[held]) ** 2)
    return float(np.sum(errors) / np.sum(weight_vector[1:-1]))
