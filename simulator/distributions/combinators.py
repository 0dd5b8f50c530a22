"""Distributions built from others: finite mixtures, and shifted or scaled copies (service ``shift_ms``/``scale``)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from simulator.distributions.base import (
    Distribution,
    check_moment_order,
    check_size,
    finite_number,
    from_dict,
    probability_vector,
    require_keys,
)


class Mixture(Distribution):
    """With probability ``weights[i]`` a draw from ``components[i]`` (any Distribution, mixtures included)."""

    family = "mixture"

    def __init__(self, weights: ArrayLike, components: Sequence[Distribution]) -> None:
        self.weights = probability_vector(weights, "weights")
        self.components = list(components)
        if len(self.components) != self.weights.size:
            raise ValueError(f"components: need one per weight ({self.weights.size}), got {len(self.components)}")
        for index, component in enumerate(self.components):
            if not isinstance(component, Distribution):
                raise ValueError(
                    f"components[{index}] must be a simulator.distributions Distribution "
                    f"(wrap scipy distributions in ScipyFrozen), got {type(component).__name__}"
                )

    @property
    def support_lower_ms(self) -> float:
        return min(component.support_lower_ms for component in self.components)

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """One multinomial draw of the component counts, each component fills its share, then a shuffle."""
        counts = rng.multinomial(check_size(size), self.weights)
        draws = np.concatenate([component.sample(rng, int(count)) for component, count in zip(self.components, counts)])
        return rng.permutation(draws)

    def moment(self, k: int) -> float:
        check_moment_order(k)
        return float(sum(weight * component.moment(k) for weight, component in zip(self.weights, self.components)))

    def _weighted(self, method: str, x_ms: ArrayLike) -> np.ndarray:
        x = np.asarray(x_ms, dtype=float)
        return sum(weight * getattr(component, method)(x) for weight, component in zip(self.weights, self.components))

    def cdf(self, x_ms: ArrayLike) -> np.ndarray:
        return self._weighted("cdf", x_ms)

    def sf(self, x_ms: ArrayLike) -> np.ndarray:
        return self._weighted("sf", x_ms)

    def pdf(self, x_ms: ArrayLike) -> np.ndarray:
        return self._weighted("pdf", x_ms)

    def rescaled(self, factor: float) -> Mixture:
        return Mixture(self.weights, [component.rescaled(factor) for component in self.components])

    def to_dict(self) -> dict[str, Any]:
        return {
            "family": self.family,
            "weights": self.weights.tolist(),
            "components": [component.to_dict() for component in self.components],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Mixture:
        require_keys(data, cls.family, ("weights", "components"))
        return cls(data["weights"], [from_dict(component) for component in data["components"]])


class Shifted(Distribution):
    """``base + shift_ms``: a fixed delay added to every draw (may be negative; the caller keeps times ≥ 0)."""

    family = "shifted"

    def __init__(self, base: Distribution, shift_ms: float) -> None:
        if not isinstance(base, Distribution):
            raise ValueError(f"base must be a Distribution, got {type(base).__name__}")
        self.base = base
        self.shift_ms = finite_number(shift_ms, "shift_ms")

    @property
    def support_lower_ms(self) -> float:
        return self.base.support_lower_ms + self.shift_ms

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return self.base.sample(rng, size) + self.shift_ms

    def moment(self, k: int) -> float:
        """E[(X + s)^k] = Σ_j C(k, j) s^(k−j) E[X^j]."""
        check_moment_order(k)
        return float(sum(math.comb(k, j) * self.shift_ms ** (k - j) * self.base.moment(j) for j in range(k + 1)))

    def cdf(self, x_ms: ArrayLike) -> np.ndarray:
        return self.base.cdf(np.asarray(x_ms, dtype=float) - self.shift_ms)

    def sf(self, x_ms: ArrayLike) -> np.ndarray:
        return self.base.sf(np.asarray(x_ms, dtype=float) - self.shift_ms)

    def pdf(self, x_ms: ArrayLike) -> np.ndarray:
        return self.base.pdf(np.asarray(x_ms, dtype=float) - self.shift_ms)

    def ppf(self, q: ArrayLike) -> np.ndarray:
        return self.base.ppf(q) + self.shift_ms

    def rescaled(self, factor: float) -> Shifted:
        return Shifted(self.base.rescaled(factor), self.shift_ms * finite_number(factor, "factor", positive=True))

    def to_dict(self) -> dict[str, Any]:
        return {"family": self.family, "shift_ms": self.shift_ms, "base": self.base.to_dict()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Shifted:
        require_keys(data, cls.family, ("base", "shift_ms"))
        return cls(from_dict(data["base"]), data["shift_ms"])


class Scaled(Distribution):
    """``factor · base`` (factor > 0): e.g. a kernel measured on one device, slowed for another."""

    family = "scaled"

    def __init__(self, base: Distribution, factor: float) -> None:
        if not isinstance(base, Distribution):
            raise ValueError(f"base must be a Distribution, got {type(base).__name__}")
        self.base = base
        self.factor = finite_number(factor, "factor", positive=True)

    @property
    def support_lower_ms(self) -> float:
        return self.base.support_lower_ms * self.factor

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return self.base.sample(rng, size) * self.factor

    def moment(self, k: int) -> float:
        check_moment_order(k)
        return float(self.factor**k * self.base.moment(k))

    def cdf(self, x_ms: ArrayLike) -> np.ndarray:
        return self.base.cdf(np.asarray(x_ms, dtype=float) / self.factor)

    def sf(self, x_ms: ArrayLike) -> np.ndarray:
        return self.base.sf(np.asarray(x_ms, dtype=float) / self.factor)

    def pdf(self, x_ms: ArrayLike) -> np.ndarray:
        return self.base.pdf(np.asarray(x_ms, dtype=float) / self.factor) / self.factor

    def ppf(self, q: ArrayLike) -> np.ndarray:
        return self.base.ppf(q) * self.factor

    def rescaled(self, factor: float) -> Scaled:
        return Scaled(self.base, self.factor * finite_number(factor, "factor", positive=True))

    def to_dict(self) -> dict[str, Any]:
        return {"family": self.family, "factor": self.factor, "base": self.base.to_dict()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Scaled:
        require_keys(data, cls.family, ("base", "factor"))
        return cls(from_dict(data["base"]), data["factor"])
