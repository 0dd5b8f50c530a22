"""Monotone non-decreasing curves of a time against a size (batch size → time of one call).

Two shapes: a piecewise-linear interpolation between knots with non-decreasing values, and
a + b·x^c with b ≥ 0, c > 0 (c = 1: affine). :class:`BatchCurve` is one of them fitted to the
per-size statistic of measured times (by :mod:`simulator.fitting.batch_curve`); it answers only
inside the measured range of sizes: extrapolating batch cost is the kind of guess a capacity plan
must not hide. Service models evaluate it; fitting makes it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike

Statistic = Literal["mean", "p99"]


def increasing_points(x: ArrayLike, y: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Matching 1-D finite arrays with x strictly increasing, or a ValueError saying which condition fails."""
    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if xs.ndim != 1 or xs.shape != ys.shape or xs.size < 1:
        raise ValueError(f"need matching 1-D x and y, got shapes {xs.shape} and {ys.shape}")
    if not (np.all(np.isfinite(xs)) and np.all(np.isfinite(ys))):
        raise ValueError("curve points must be finite")
    if np.any(np.diff(xs) <= 0):
        raise ValueError(f"x must be strictly increasing, got {xs.tolist()}")
    return xs, ys


class PiecewiseLinear:
    """Linear interpolation between knots with non-decreasing values."""

    kind = "piecewise_linear"

    def __init__(self, knots_x: ArrayLike, knots_y: ArrayLike) -> None:
        self.knots_x, self.knots_y = increasing_points(knots_x, knots_y)
        if np.any(np.diff(self.knots_y) < 0):
            raise ValueError(f"knots_y must be non-decreasing, got {self.knots_y.tolist()}")

    def __call__(self, x: ArrayLike) -> np.ndarray:
        return np.interp(np.asarray(x, dtype=float), self.knots_x, self.knots_y)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "knots_x": self.knots_x.tolist(), "knots_y": self.knots_y.tolist()}


class AffinePower:
    """a + b·x^c with b ≥ 0 and c > 0, so non-decreasing for x ≥ 0."""

    kind = "affine_power"

    def __init__(self, a: float, b: float, c: float) -> None:
        self.a, self.b, self.c = float(a), float(b), float(c)
        if not all(math.isfinite(v) for v in (self.a, self.b, self.c)):
            raise ValueError(f"a, b, c must be finite, got {a!r}, {b!r}, {c!r}")
        if self.b < 0 or self.c <= 0:
            raise ValueError(f"need b ≥ 0 and c > 0 for a non-decreasing curve, got b={b!r}, c={c!r}")

    def __call__(self, x: ArrayLike) -> np.ndarray:
        return self.a + self.b * np.asarray(x, dtype=float) ** self.c

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "a": self.a, "b": self.b, "c": self.c}


Curve = PiecewiseLinear | AffinePower


def curve_from_dict(data: Mapping[str, Any]) -> Curve:
    """Rebuild a curve from its ``to_dict`` form."""
    kind = data.get("kind") if isinstance(data, Mapping) else None
    if kind == PiecewiseLinear.kind:
        return PiecewiseLinear(data["knots_x"], data["knots_y"])
    if kind == AffinePower.kind:
        return AffinePower(data["a"], data["b"], data["c"])
    raise ValueError(f"curve kind must be {PiecewiseLinear.kind!r} or {AffinePower.kind!r}, got {data!r}")


class BatchCurve:
    """Monotone time (ms) of one call as a function of batch size, defined on the measured size range."""

    def __init__(
        self,
        curve: Curve,
        statistic: Statistic,
        measured_sizes: ArrayLike,
        measured_ms: ArrayLike,
        loo_errors: Mapping[str, float] | None = None,
    ) -> None:
        self.curve = curve
        self.statistic = statistic
        self.measured_sizes = np.asarray(measured_sizes, dtype=float)
        self.measured_ms = np.asarray(measured_ms, dtype=float)
        self.loo_errors = dict(loo_errors or {})
        if (
            self.measured_sizes.ndim != 1
            or self.measured_sizes.size < 2
            or self.measured_ms.shape != self.measured_sizes.shape
        ):
            raise ValueError("measured_sizes and measured_ms need one value per measured size, at least 2 sizes")

    @property
    def min_batch_size(self) -> int:
        return int(self.measured_sizes.min())

    @property
    def max_batch_size(self) -> int:
        return int(self.measured_sizes.max())

    @property
    def kind(self) -> str:
        return self.curve.kind

    def time_ms(self, batch_size: ArrayLike) -> np.ndarray:
        """The fitted time of one call of ``batch_size``; ValueError outside the measured range."""
        sizes = np.asarray(batch_size, dtype=float)
        outside = (sizes < self.min_batch_size) | (sizes > self.max_batch_size) | ~np.isfinite(sizes)
        if np.any(outside):
            raise ValueError(
                f"batch size {sizes[outside].ravel()[0]:g} is outside the measured range "
                f"[{self.min_batch_size}, {self.max_batch_size}]; measure it rather than extrapolate"
            )
        return self.curve(sizes)

    __call__ = time_ms

    def to_dict(self) -> dict[str, Any]:
        return {
            "statistic": self.statistic,
            "curve": self.curve.to_dict(),
            "measured_sizes": self.measured_sizes.tolist(),
            "measured_ms": self.measured_ms.tolist(),
            "loo_errors": dict(self.loo_errors),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BatchCurve:
        missing = [key for key in ("statistic", "curve", "measured_sizes", "measured_ms") if key not in data]
        if missing:
            raise ValueError(f"batch curve dict is missing {missing}")
        return cls(
            curve_from_dict(data["curve"]),
            data["statistic"],
            data["measured_sizes"],
            data["measured_ms"],
            data.get("loo_errors"),
        )

    def __repr__(self) -> str:
        return f"BatchCurve({self.kind}, {self.statistic}, sizes {self.min_batch_size}..{self.max_batch_size})"
