"""Per-request framework overhead: the part of a worker's time that is not the kernel.

Three models, all drawing ``overhead_ms`` for requests given the node's occupancy (the number of
requests in the system when each arrived or started; models that ignore it accept it anyway):

* :class:`FixedOverhead` — a constant;
* :class:`DistributionOverhead` — i.i.d. draws from any simulator.distributions law;
* :class:`OccupancyOverhead` — fitted from data: mean overhead as a monotone curve of occupancy
  (isotonic piecewise-linear or affine), times a multiplicative residual with mean 1 (the
  empirical ratios' quantiles, or a lognormal), so spread grows with the mean. Outside the
  measured occupancies the curve is held at its end values (no extrapolation). The curve may
  rise with occupancy (locks and queues contended under load) or fall (a worker that finds the
  next request waiting skips the wake-up an idle worker pays): the data choose.

:func:`fit_overhead` takes paired worker (end-to-end) and kernel times: overhead = worker − kernel.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike

from simulator.distributions import Distribution, from_dict
from simulator.fitting.curves import (
    AffinePower,
    Curve,
    curve_from_dict,
    fit_affine_power,
    fit_piecewise_linear,
    leave_one_out_error,
)

_RESIDUAL_QUANTILES = 1001


def _occupancy_array(occupancy: ArrayLike) -> np.ndarray:
    values = np.asarray(occupancy, dtype=float).ravel()
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise ValueError("occupancy must be finite counts ≥ 0")
    return values


class FixedOverhead:
    """The same overhead for every request."""

    kind = "fixed"

    def __init__(self, overhead_ms: float) -> None:
        self.overhead_ms = float(overhead_ms)
        if not (math.isfinite(self.overhead_ms) and self.overhead_ms >= 0):
            raise ValueError(f"overhead_ms must be finite and ≥ 0, got {overhead_ms!r}")

    def sample(self, rng: np.random.Generator, occupancy: ArrayLike) -> np.ndarray:
        return np.full(_occupancy_array(occupancy).size, self.overhead_ms)

    def mean_ms(self, occupancy: ArrayLike) -> np.ndarray:
        return np.full(_occupancy_array(occupancy).size, self.overhead_ms)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "overhead_ms": self.overhead_ms}


class DistributionOverhead:
    """Independent draws from ``distribution`` whatever the occupancy."""

    kind = "distribution"

    def __init__(self, distribution: Distribution) -> None:
        if not isinstance(distribution, Distribution):
            raise ValueError(
                f"distribution must be a simulator.distributions Distribution, got {type(distribution).__name__}"
            )
        self.distribution = distribution

    def sample(self, rng: np.random.Generator, occupancy: ArrayLike) -> np.ndarray:
        return self.distribution.sample(rng, _occupancy_array(occupancy).size)

    def mean_ms(self, occupancy: ArrayLike) -> np.ndarray:
        return np.full(_occupancy_array(occupancy).size, self.distribution.mean())

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "distribution": self.distribution.to_dict()}


class OccupancyOverhead:
    """overhead = curve(occupancy) × R, R ≥ 0 with E[R] = 1: empirical ratio quantiles or lognormal(σ)."""

    kind = "occupancy"

    def __init__(
        self,
        curve: Curve,
        occupancy_range: tuple[float, float],
        residual: Mapping[str, Any],
        occupancy_at: Literal["arrival", "start"] = "arrival",
        falling: bool = False,
    ) -> None:
        """``falling``: ``curve`` is a (non-decreasing) curve of −occupancy, so the mean falls as occupancy grows."""
        low, high = (float(v) for v in occupancy_range)
        if not (0 <= low <= high and math.isfinite(high)):
            raise ValueError(f"occupancy_range must be (low, high) with 0 ≤ low ≤ high, got {occupancy_range!r}")
        if occupancy_at not in ("arrival", "start"):
            raise ValueError(f"occupancy_at must be 'arrival' or 'start', got {occupancy_at!r}")
        self.curve = curve
        self.falling = bool(falling)
        self.occupancy_range = (low, high)
        self.occupancy_at = occupancy_at
        self.residual = _checked_residual(residual)

    def mean_ms(self, occupancy: ArrayLike) -> np.ndarray:
        """The fitted mean overhead at each occupancy (held flat outside the measured range)."""
        clamped = np.clip(_occupancy_array(occupancy), *self.occupancy_range)
        return np.maximum(self.curve(-clamped if self.falling else clamped), 0.0)

    def sample(self, rng: np.random.Generator, occupancy: ArrayLike) -> np.ndarray:
        means = self.mean_ms(occupancy)
        if self.residual["kind"] == "lognormal":
            sigma = self.residual["sigma"]
            factors = np.exp(sigma * rng.standard_normal(means.size) - sigma**2 / 2)
        else:
            quantiles = np.asarray(self.residual["quantiles"])
            factors = np.interp(rng.random(means.size), np.linspace(0, 1, quantiles.size), quantiles)
        return means * factors

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "curve": self.curve.to_dict(),
            "occupancy_range": list(self.occupancy_range),
            "residual": dict(self.residual),
            "occupancy_at": self.occupancy_at,
            "falling": self.falling,
        }


def _checked_residual(residual: Mapping[str, Any]) -> dict[str, Any]:
    kind = residual.get("kind") if isinstance(residual, Mapping) else None
    if kind == "lognormal":
        sigma = float(residual.get("sigma", float("nan")))
        if not (math.isfinite(sigma) and sigma >= 0):
            raise ValueError(f"lognormal residual needs sigma ≥ 0, got {residual!r}")
        return {"kind": kind, "sigma": sigma}
    if kind == "empirical":
        quantiles = np.asarray(residual.get("quantiles", []), dtype=float)
        if (
            quantiles.size < 2
            or not np.all(np.isfinite(quantiles))
            or np.any(np.diff(quantiles) < 0)
            or quantiles[0] < 0
        ):
            raise ValueError("empirical residual needs ≥ 2 non-decreasing quantiles ≥ 0")
        return {"kind": kind, "quantiles": quantiles.tolist()}
    raise ValueError(f"residual kind must be 'empirical' or 'lognormal', got {residual!r}")


OverheadModel = FixedOverhead | DistributionOverhead | OccupancyOverhead


def overhead_from_dict(data: Mapping[str, Any]) -> OverheadModel:
    """Rebuild any overhead model from its ``to_dict`` form."""
    kind = data.get("kind") if isinstance(data, Mapping) else None
    if kind == FixedOverhead.kind:
        return FixedOverhead(data["overhead_ms"])
    if kind == DistributionOverhead.kind:
        return DistributionOverhead(from_dict(data["distribution"]))
    if kind == OccupancyOverhead.kind:
        return OccupancyOverhead(
            curve_from_dict(data["curve"]),
            tuple(data["occupancy_range"]),
            data["residual"],
            data.get("occupancy_at", "arrival"),
            bool(data.get("falling", False)),
        )
    raise ValueError(f"overhead kind must be one of 'fixed', 'distribution', 'occupancy'; got {data!r}")


def _affine(x: np.ndarray, y: np.ndarray, weights: np.ndarray) -> AffinePower:
    return fit_affine_power(x, y, weights, exponent=1.0)


def _occupancy_curve(shape: str, levels: np.ndarray, means: np.ndarray, weights: np.ndarray) -> tuple[Curve, bool]:
    """The mean-overhead curve over distinct occupancy levels, and whether it falls (a curve of −occupancy).

    Each shape takes the direction whose fit has the lower weighted squared error (the two have
    the same freedom); ``auto`` then compares the shapes' leave-one-out errors (affine when there
    are fewer than 3 levels).
    """
    if levels.size == 1:
        return AffinePower(means[0], 0.0, 1.0), False
    directions = {False: (levels, means, weights), True: (-levels[::-1], means[::-1], weights[::-1])}

    def directed(fit: Callable[[np.ndarray, np.ndarray, np.ndarray], Curve]) -> tuple[Curve, bool]:
        fitted = {falling: fit(*points) for falling, points in directions.items()}

        def squared_error(falling: bool) -> float:
            x, y, w = directions[falling]
            return float(np.sum(w * (fitted[falling](x) - y) ** 2))

        falling = min(directions, key=squared_error)  # a tie: rising
        return fitted[falling], falling

    fits = {"affine": _affine, "isotonic": fit_piecewise_linear}  # a tie of leave-one-out errors: affine
    if shape == "auto":
        shape = "affine" if levels.size < 3 else min(
            fits, key=lambda name: leave_one_out_error(fits[name], *directions[directed(fits[name])[1]])
        )
    return directed(fits[shape])


def fit_overhead(
    worker_ms: ArrayLike,
    kernel_ms: ArrayLike,
    occupancy: ArrayLike,
    curve: Literal["auto", "isotonic", "affine"] = "auto",
    residual: Literal["empirical", "lognormal"] = "empirical",
    occupancy_at: Literal["arrival", "start"] = "arrival",
) -> OccupancyOverhead:
    """Fit overhead = worker − kernel as a monotone (rising or falling) function of occupancy with a multiplicative residual.

    Negative differences (timer noise) are clipped to 0. The mean per occupancy level is fitted
    with weights = level counts; ``auto`` takes the shape with the lower leave-one-out error over
    interior levels (affine when there are fewer than 3 levels).
    """
    worker = np.asarray(worker_ms, dtype=float).ravel()
    kernel = np.asarray(kernel_ms, dtype=float).ravel()
    levels = _occupancy_array(occupancy)
    if not (worker.size == kernel.size == levels.size) or worker.size < 10:
        raise ValueError(
            "worker_ms, kernel_ms and occupancy need the same length ≥ 10, "
            f"got {worker.size}, {kernel.size}, {levels.size}"
        )
    if not (np.all(np.isfinite(worker)) and np.all(np.isfinite(kernel))):
        raise ValueError("worker_ms and kernel_ms must be finite")
    if curve not in ("auto", "isotonic", "affine"):
        raise ValueError(f"curve must be 'auto', 'isotonic' or 'affine', got {curve!r}")
    overhead = np.maximum(worker - kernel, 0.0)
    if overhead.mean() <= 0:
        raise ValueError("worker_ms never exceeds kernel_ms: there is no overhead to model (use FixedOverhead(0))")
    distinct, inverse, counts = np.unique(levels, return_inverse=True, return_counts=True)
    means = np.bincount(inverse, weights=overhead) / counts
    fitted, falling = _occupancy_curve(curve, distinct, means, counts.astype(float))
    centers = np.maximum(fitted(-levels if falling else levels), 0.0)
    usable = centers > 0
    ratios = overhead[usable] / centers[usable]
    ratios = ratios / ratios.mean()
    if residual == "lognormal":
        if np.any(ratios <= 0):
            raise ValueError("a lognormal residual needs every overhead > 0; some are 0 (use residual='empirical')")
        model_residual: dict[str, Any] = {"kind": "lognormal", "sigma": float(np.log(ratios).std())}
    elif residual == "empirical":
        model_residual = {
            "kind": "empirical",
            "quantiles": np.quantile(ratios, np.linspace(0, 1, _RESIDUAL_QUANTILES)).tolist(),
        }
    else:
        raise ValueError(f"residual must be 'empirical' or 'lognormal', got {residual!r}")
    return OccupancyOverhead(fitted, (float(distinct[0]), float(distinct[-1])), model_residual, occupancy_at, falling)
