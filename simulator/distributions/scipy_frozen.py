"""A scipy.stats continuous distribution, named and parameterized as plain data, behind this package's interface."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from simulator.distributions.base import Distribution, check_moment_order, check_size, finite_number, require_keys


class ScipyFrozen(Distribution):
    """``scipy.stats.<name>(**params)`` frozen; times in ms.

    E.g. ``ScipyFrozen("lognorm", {"s": 0.4, "scale": 3.0})``; shapes by name, plus ``loc``/``scale``.
    """

    family = "scipy"

    def __init__(self, name: str, params: Mapping[str, float]) -> None:
        import scipy.stats

        family = getattr(scipy.stats, str(name), None)
        if not isinstance(family, scipy.stats.rv_continuous):
            raise ValueError(
                f"name must be a continuous distribution of scipy.stats (e.g. lognorm, gamma), got {name!r}"
            )
        if not isinstance(params, Mapping):
            raise ValueError(f"params must be a mapping of parameter name to number, got {params!r}")
        numbers = {str(key): finite_number(value, f"{name} parameter {key!r}") for key, value in params.items()}
        allowed = (family.shapes.split(", ") if family.shapes else []) + ["loc", "scale"]
        unknown = sorted(set(numbers) - set(allowed))
        if unknown:
            raise ValueError(f"{name} has no parameter(s) {unknown}; allowed: {allowed}")
        try:
            frozen = family(**numbers)
        except TypeError as error:
            raise ValueError(f"{name}{numbers}: {error} (parameters: {allowed})") from error
        if not math.isfinite(float(frozen.ppf(0.5))):
            raise ValueError(f"{name}{numbers}: invalid parameter values (scipy rejects them); parameters: {allowed}")
        self.name = str(name)
        self.params = numbers
        self.frozen = frozen

    @property
    def support_lower_ms(self) -> float:
        return float(self.frozen.support()[0])

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return np.asarray(self.frozen.rvs(size=check_size(size), random_state=rng), dtype=float)

    def moment(self, k: int) -> float:
        check_moment_order(k)
        return float(self.frozen.moment(k)) if k else 1.0

    def cdf(self, x_ms: ArrayLike) -> np.ndarray:
        return np.asarray(self.frozen.cdf(x_ms), dtype=float)

    def sf(self, x_ms: ArrayLike) -> np.ndarray:
        return np.asarray(self.frozen.sf(x_ms), dtype=float)

    def pdf(self, x_ms: ArrayLike) -> np.ndarray:
        return np.asarray(self.frozen.pdf(x_ms), dtype=float)

    def ppf(self, q: ArrayLike) -> np.ndarray:
        q_array = np.asarray(q, dtype=float)
        if np.any(np.isnan(q_array)) or np.any((q_array < 0) | (q_array > 1)):
            raise ValueError(f"quantile levels q must lie in [0, 1], got {q_array.tolist()}")
        return np.asarray(self.frozen.ppf(q_array), dtype=float)

    def rescaled(self, factor: float) -> ScipyFrozen:
        factor = finite_number(factor, "factor", positive=True)
        params = dict(self.params)
        params["loc"] = params.get("loc", 0.0) * factor
        params["scale"] = params.get("scale", 1.0) * factor
        return ScipyFrozen(self.name, params)

    def to_dict(self) -> dict[str, Any]:
        return {"family": self.family, "name": self.name, "params": dict(self.params)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ScipyFrozen:
        require_keys(data, cls.family, ("name", "params"))
        return cls(data["name"], data["params"])
