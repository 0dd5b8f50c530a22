"""The interface every service-time distribution here follows, its JSON registry and a numeric ppf.

Times are in milliseconds. A distribution is built from plain parameters, validated at
construction (a ``ValueError`` names the offending parameter), and round-trips through
``to_dict``/``from_dict`` as JSON-able data so fitted models can be stored in files.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike

_REGISTRY: dict[str, type[Distribution]] = {}

# Bisection stops when the bracket is this narrow relative to its ends (ppf is asked for 1e-9).
_PPF_RELATIVE_TOLERANCE = 1e-13
_PPF_MAX_ITERATIONS = 400


class Distribution(ABC):
    """A continuous distribution of times in ms: sampling, moments, cdf/sf/pdf/ppf and JSON form."""

    family: ClassVar[str]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "family" in cls.__dict__:
            _REGISTRY[cls.family] = cls

    @abstractmethod
    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """``size`` independent draws, in ms."""

    @abstractmethod
    def moment(self, k: int) -> float:
        """The raw moment E[X^k] (ms^k); ``inf`` where it does not exist."""

    @abstractmethod
    def cdf(self, x_ms: ArrayLike) -> np.ndarray:
        """P(X ≤ x), with the shape of ``x_ms``."""

    @abstractmethod
    def pdf(self, x_ms: ArrayLike) -> np.ndarray:
        """The density at ``x_ms`` (per ms)."""

    @property
    @abstractmethod
    def support_lower_ms(self) -> float:
        """The smallest value the distribution can take (−inf when unbounded below)."""

    @abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able parameters, with ``family`` naming the class for :func:`from_dict`."""

    @classmethod
    @abstractmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Distribution:
        """Rebuild from :meth:`to_dict` output (validated like the constructor)."""

    @abstractmethod
    def rescaled(self, factor: float) -> Distribution:
        """The same family for ``factor`` · X (a change of time unit); used to fit on normalized data."""

    def sf(self, x_ms: ArrayLike) -> np.ndarray:
        """P(X > x); subclasses override where a direct form is more accurate in the tail."""
        return 1.0 - self.cdf(x_ms)

    def mean(self) -> float:
        """E[X] in ms."""
        return self.moment(1)

    def var(self) -> float:
        """Var[X] in ms²."""
        return self.moment(2) - self.moment(1) ** 2

    def ppf(self, q: ArrayLike) -> np.ndarray:
        """The q-quantile, by bracketing and bisection on cdf (or sf for q > 1/2), to ~1e-13 relative."""
        return invert_cdf(self, q)

    def _cdf_and_sf(self, x_ms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Both tails at once; classes whose cdf and sf share work override this."""
        return self.cdf(x_ms), self.sf(x_ms)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.to_dict()!r})"


def from_dict(data: Mapping[str, Any]) -> Distribution:
    """Rebuild any distribution of this package from its ``to_dict`` form (dispatch on ``family``)."""
    if not isinstance(data, Mapping) or "family" not in data:
        raise ValueError(f"a distribution dict needs a 'family' key (one of {sorted(_REGISTRY)}), got {data!r}")
    family = data["family"]
    if family not in _REGISTRY:
        raise ValueError(f"unknown distribution family {family!r}; known: {sorted(_REGISTRY)}")
    return _REGISTRY[family].from_dict(data)


def require_keys(data: Mapping[str, Any], family: str, keys: tuple[str, ...]) -> None:
    """Raise a ValueError naming the missing keys of a ``family`` dict."""
    missing = [key for key in keys if key not in data]
    if missing:
        raise ValueError(f"{family} dict is missing {missing}; it needs {list(keys)}")


def check_moment_order(k: int) -> None:
    """Moments are defined here for integer orders k ≥ 0."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
        raise ValueError(f"moment order k must be an integer ≥ 0, got {k!r}")


def check_size(size: int) -> int:
    """A sample size must be a non-negative integer."""
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 0:
        raise ValueError(f"size must be an integer ≥ 0, got {size!r}")
    return int(size)


def probability_vector(values: ArrayLike, name: str) -> np.ndarray:
    """A 1-D vector of non-negative finite weights summing to 1 (±1e-9), renormalized exactly."""
    vector = np.asarray(values, dtype=float)
    if vector.ndim != 1 or vector.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D list of probabilities, got shape {vector.shape}")
    if not np.all(np.isfinite(vector)) or np.any(vector < 0):
        raise ValueError(f"{name} must be finite and ≥ 0, got {vector.tolist()}")
    total = float(vector.sum())
    if abs(total - 1.0) > 1e-9:
        raise ValueError(f"{name} must sum to 1, got sum {total!r} ({vector.tolist()})")
    return vector / total


def positive_vector(values: ArrayLike, name: str) -> np.ndarray:
    """A 1-D vector of finite values > 0 (rates, scales)."""
    vector = np.asarray(values, dtype=float)
    if vector.ndim != 1 or vector.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D list, got shape {vector.shape}")
    if not np.all(np.isfinite(vector)) or np.any(vector <= 0):
        raise ValueError(f"{name} must be finite and > 0, got {vector.tolist()}")
    return vector


def finite_number(value: float, name: str, *, positive: bool = False) -> float:
    """A finite float (and > 0 when ``positive``)."""
    try:
        number = float(value)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must be a number, got {value!r}") from error
    if not math.isfinite(number) or (positive and number <= 0):
        raise ValueError(f"{name} must be finite{' and > 0' if positive else ''}, got {value!r}")
    return number


def invert_cdf(dist: Distribution, q: ArrayLike) -> np.ndarray:
    """Vectorized numeric quantiles: expand a bracket geometrically, then bisect every q at once.

    For q > 1/2 the survival function is compared with 1 − q, so upper quantiles keep their
    relative accuracy (1 − cdf loses digits in the tail).
    """
    q_array = np.asarray(q, dtype=float)
    if np.any(np.isnan(q_array)) or np.any((q_array < 0) | (q_array > 1)):
        raise ValueError(f"quantile levels q must lie in [0, 1], got {q_array.tolist()}")
    flat = q_array.ravel()
    result = np.empty_like(flat)
    result[flat == 0] = dist.support_lower_ms
    result[flat == 1] = np.inf
    inner = np.flatnonzero((flat > 0) & (flat < 1))
    if inner.size:
        result[inner] = _bisect_quantiles(dist, flat[inner])
    return result.reshape(q_array.shape)


def _below_quantile(dist: Distribution, x_ms: np.ndarray, q: np.ndarray) -> np.ndarray:
    """True where x lies below the q-quantile (cdf(x) < q), using sf for upper levels."""
    cdf, sf = dist._cdf_and_sf(x_ms)
    return np.where(q <= 0.5, cdf < q, sf > 1.0 - q)


def _finite_or(value: float, fallback: float) -> float:
    return value if math.isfinite(value) and value > 0 else fallback


def _bracket_bounded(dist: Distribution, q: np.ndarray, lower: float) -> tuple[np.ndarray, np.ndarray]:
    """Distances from the support's lower end, a factor 4 apart, around each quantile.

    Starts at the mean's distance and moves by factors of 4: outward while below the quantile,
    inward while above (an inward probe reaching 0 lands on the lower end, which is below).
    """
    hint = _finite_or(dist.mean() - lower, 1.0)
    grow = _below_quantile(dist, np.full(q.shape, lower + hint), q)
    low = np.where(grow, hint, 0.0)
    high = np.full(q.shape, hint)
    probe = np.where(grow, 4.0 * hint, hint / 4.0)
    pending = np.arange(q.size)
    for _ in range(_PPF_MAX_ITERATIONS):
        if not np.all(np.isfinite(probe[pending])):
            raise ValueError(f"{type(dist).__name__}: could not bracket quantiles {q.tolist()} (overflow)")
        below = _below_quantile(dist, lower + probe[pending], q[pending])
        low[pending] = np.where(below, probe[pending], low[pending])
        high[pending] = np.where(below, high[pending], probe[pending])
        growing = grow[pending]
        probe[pending] = np.where(growing, probe[pending] * 4.0, probe[pending] / 4.0)
        pending = pending[np.where(growing, below, ~below)]
        if pending.size == 0:
            break
    return lower + low, lower + high


def _bracket_unbounded(dist: Distribution, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Brackets for a support unbounded below: steps of growing size (×4) from the mean, on the quantile's side."""
    anchor = dist.mean() if math.isfinite(dist.mean()) else 0.0
    hint = _finite_or(math.sqrt(max(dist.var(), 0.0)) if math.isfinite(dist.var()) else math.nan, 1.0)
    upward = _below_quantile(dist, np.full(q.shape, anchor), q)
    near = np.full(q.shape, anchor)
    far = np.full(q.shape, anchor)
    step = np.full(q.shape, hint)
    pending = np.arange(q.size)
    for _ in range(_PPF_MAX_ITERATIONS):
        probe = anchor + np.where(upward[pending], step[pending], -step[pending])
        if not np.all(np.isfinite(probe)):
            raise ValueError(f"{type(dist).__name__}: could not bracket quantiles {q.tolist()} (overflow)")
        crossed = _below_quantile(dist, probe, q[pending]) != upward[pending]
        far[pending] = np.where(crossed, probe, far[pending])
        near[pending] = np.where(crossed, near[pending], probe)
        step[pending] *= 4.0
        pending = pending[~crossed]
        if pending.size == 0:
            break
    return np.minimum(near, far), np.maximum(near, far)


def _bisect_quantiles(dist: Distribution, q: np.ndarray) -> np.ndarray:
    lower = dist.support_lower_ms
    lo, hi = _bracket_bounded(dist, q, lower) if math.isfinite(lower) else _bracket_unbounded(dist, q)
    active = np.arange(q.size)
    for _ in range(_PPF_MAX_ITERATIONS):
        width = hi[active] - lo[active]
        scale = np.maximum(np.abs(lo[active]), np.abs(hi[active]))
        active = active[width > _PPF_RELATIVE_TOLERANCE * scale]
        if active.size == 0:
            break
        mid = 0.5 * (lo[active] + hi[active])
        below = _below_quantile(dist, mid, q[active])
        lo[active] = np.where(below, mid, lo[active])
        hi[active] = np.where(below, hi[active], mid)
    return 0.5 * (lo + hi)
