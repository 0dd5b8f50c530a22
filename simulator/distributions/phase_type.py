"""Continuous phase-type distributions (absorption time of a finite CTMC) and the hyperexponential.

``PhaseType(alpha, T)`` requires the initial vector ``alpha`` to sum to 1 (no atom at zero): a
service time is never exactly zero, and rejecting a defect keeps pdf and sampling simple.
"""

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
    positive_vector,
    probability_vector,
    require_keys,
)

# Taylor degree and norm bound of the scaled matrix: the remainder is below 1/(N+1)! · e ≈ 2e-17.
_TAYLOR_DEGREE = 18
_TAYLOR_NORM_BOUND = 1.0


def batched_expm(matrices: np.ndarray) -> np.ndarray:
    """exp(A) for a stack of small matrices (n, m, m), by scaling and squaring a degree-18 Taylor core.

    scipy.linalg.expm handles stacks too but costs ~70 µs per 4×4 matrix; this batches every step
    in numpy (each matrix gets its own number of squarings), which cdf over 10⁴ points needs.
    """
    norms = np.abs(matrices).sum(axis=-2).max(axis=-1)  # induced 1-norm
    squarings = np.maximum(0, np.ceil(np.log2(np.maximum(norms, 1e-300) / _TAYLOR_NORM_BOUND))).astype(int)
    scaled = matrices / np.ldexp(1.0, squarings)[:, None, None]
    identity = np.eye(matrices.shape[-1])
    result = identity + scaled / _TAYLOR_DEGREE
    for degree in range(_TAYLOR_DEGREE - 1, 0, -1):
        result = identity + (scaled @ result) / degree
    for level in range(int(squarings.max(initial=0))):
        rows = squarings > level
        result[rows] = result[rows] @ result[rows]
    return result


class PhaseType(Distribution):
    """Time to absorption of a CTMC with initial vector ``alpha`` (sum 1) and sub-generator ``T`` (per ms)."""

    family = "phase_type"

    def __init__(self, alpha: ArrayLike, T: ArrayLike) -> None:
        self.alpha = probability_vector(alpha, "alpha")
        matrix = np.asarray(T, dtype=float)
        phases = self.alpha.size
        if matrix.shape != (phases, phases):
            raise ValueError(f"T must be a {phases}×{phases} matrix to match alpha, got shape {matrix.shape}")
        if not np.all(np.isfinite(matrix)):
            raise ValueError("T must be finite")
        off_diagonal = matrix[~np.eye(phases, dtype=bool)]
        if np.any(off_diagonal < 0):
            raise ValueError(f"T's off-diagonal rates must be ≥ 0, got {matrix.tolist()}")
        diagonal = np.diag(matrix)
        if np.any(diagonal >= 0):
            raise ValueError(f"T's diagonal must be < 0 (every phase is left at some rate), got {diagonal.tolist()}")
        exit_rates = -matrix.sum(axis=1)
        if np.any(exit_rates < -1e-12 * np.abs(diagonal)):
            raise ValueError(f"T's rows must sum to ≤ 0 (exit rates ≥ 0), got row sums {(-exit_rates).tolist()}")
        try:
            green = np.linalg.solve(-matrix, np.eye(phases))  # expected time spent in each phase
        except np.linalg.LinAlgError as error:
            raise ValueError("T must make absorption certain (−T invertible); it is singular") from error
        if not np.all(np.isfinite(green)) or np.any(green < -1e-9 * np.abs(green).max()):
            raise ValueError("T must make absorption certain from every phase (−T⁻¹ finite and ≥ 0)")
        self.T = matrix
        self.exit_rates_per_ms = np.maximum(exit_rates, 0.0)
        self._green = green

    @classmethod
    def hyper_erlang(cls, weights: ArrayLike, shapes: Sequence[int], rates_per_ms: ArrayLike) -> PhaseType:
        """A mixture of Erlang(shape_j, rate_j) branches as one PH (block-diagonal chains)."""
        weight_vector = probability_vector(weights, "weights")
        rate_vector = positive_vector(rates_per_ms, "rates_per_ms")
        if len(shapes) != weight_vector.size or rate_vector.size != weight_vector.size:
            raise ValueError("weights, shapes and rates_per_ms must have one entry per branch")
        if any(isinstance(r, bool) or not isinstance(r, (int, np.integer)) or r < 1 for r in shapes):
            raise ValueError(f"shapes must be integers ≥ 1, got {list(shapes)}")
        phases = int(sum(shapes))
        alpha = np.zeros(phases)
        matrix = np.zeros((phases, phases))
        start = 0
        for weight, shape, rate in zip(weight_vector, shapes, rate_vector):
            alpha[start] = weight
            for phase in range(start, start + shape):
                matrix[phase, phase] = -rate
                if phase + 1 < start + shape:
                    matrix[phase, phase + 1] = rate
            start += shape
        return cls(alpha, matrix)

    @property
    def phases(self) -> int:
        return self.alpha.size

    @property
    def support_lower_ms(self) -> float:
        return 0.0

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """Exact draws: every sample's CTMC path is simulated, one jump per loop for all samples at once."""
        size = check_size(size)
        holding_rates = -np.diag(self.T)
        jump = np.hstack([self.T, self.exit_rates_per_ms[:, None]]) / holding_rates[:, None]
        np.fill_diagonal(jump, 0.0)
        cumulative = np.cumsum(jump, axis=1)
        cumulative[:, -1] = 1.0
        absorbed = self.phases
        state = rng.choice(self.phases, size=size, p=self.alpha)
        times = np.zeros(size)
        active = np.arange(size)
        while active.size:
            current = state[active]
            times[active] += rng.standard_exponential(active.size) / holding_rates[current]
            step = (rng.random(active.size)[:, None] >= cumulative[current]).sum(axis=1)
            state[active] = step
            active = active[state[active] < absorbed]
        return times

    def moment(self, k: int) -> float:
        """k! α (−T)^{−k} 1."""
        check_moment_order(k)
        vector = np.ones(self.phases)
        for _ in range(k):
            vector = self._green @ vector
        return float(math.factorial(k) * self.alpha @ vector)

    def _transient(self, x_ms: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """Rows α exp(Q x) of the chain with its absorbing state appended (zeros where x < 0), and the mask x ≥ 0.

        The first ``phases`` columns are α exp(T x); the last is the probability of absorption by x,
        computed as a matrix-exponential entry rather than 1 − (sum of the others), so a tiny cdf
        keeps its relative accuracy.
        """
        x = np.asarray(x_ms, dtype=float).ravel()
        inside = x >= 0
        rows = np.zeros((x.size, self.phases + 1))
        if inside.any():
            generator = np.zeros((self.phases + 1, self.phases + 1))
            generator[: self.phases, : self.phases] = self.T
            generator[: self.phases, -1] = self.exit_rates_per_ms
            exponentials = batched_expm(generator[None, :, :] * x[inside][:, None, None])
            rows[inside] = np.einsum("i,nij->nj", self.alpha, exponentials[:, : self.phases, :])
        return rows, inside

    def _cdf_and_sf(self, x_ms: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """cdf from the absorption column, sf from the transient ones: each accurate where it is small."""
        shape = np.shape(x_ms)
        rows, inside = self._transient(x_ms)
        sf = np.where(inside, np.clip(rows[:, : self.phases].sum(axis=1), 0.0, 1.0), 1.0)
        cdf = np.where(inside, np.clip(rows[:, -1], 0.0, 1.0), 0.0)
        return cdf.reshape(shape), sf.reshape(shape)

    def cdf(self, x_ms: ArrayLike) -> np.ndarray:
        return self._cdf_and_sf(x_ms)[0]

    def sf(self, x_ms: ArrayLike) -> np.ndarray:
        return self._cdf_and_sf(x_ms)[1]

    def pdf(self, x_ms: ArrayLike) -> np.ndarray:
        """α exp(T x) t, with t the exit-rate vector."""
        rows, inside = self._transient(x_ms)
        density = rows[:, : self.phases] @ self.exit_rates_per_ms
        return np.where(inside, np.maximum(density, 0.0), 0.0).reshape(np.shape(x_ms))

    def rescaled(self, factor: float) -> PhaseType:
        return PhaseType(self.alpha, self.T / finite_number(factor, "factor", positive=True))

    def to_dict(self) -> dict[str, Any]:
        return {"family": self.family, "alpha": self.alpha.tolist(), "T": self.T.tolist()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PhaseType:
        require_keys(data, cls.family, ("alpha", "T"))
        return cls(data["alpha"], data["T"])


class HyperExponential(Distribution):
    """With probability ``weights[i]`` an exponential of rate ``rates_per_ms[i]``; closed forms throughout."""

    family = "hyperexponential"

    def __init__(self, weights: ArrayLike, rates_per_ms: ArrayLike) -> None:
        self.weights = probability_vector(weights, "weights")
        self.rates_per_ms = positive_vector(rates_per_ms, "rates_per_ms")
        if self.rates_per_ms.size != self.weights.size:
            raise ValueError(
                "weights and rates_per_ms need one entry per phase, "
                f"got {self.weights.size} and {self.rates_per_ms.size}"
            )

    @property
    def support_lower_ms(self) -> float:
        return 0.0

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        size = check_size(size)
        phase = rng.choice(self.weights.size, size=size, p=self.weights)
        return rng.standard_exponential(size) / self.rates_per_ms[phase]

    def moment(self, k: int) -> float:
        """k! Σ w_i / λ_i^k."""
        check_moment_order(k)
        return float(math.factorial(k) * np.sum(self.weights / self.rates_per_ms**k))

    def _terms(self, x_ms: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        x = np.asarray(x_ms, dtype=float)
        survival = np.exp(-np.multiply.outer(np.maximum(x, 0.0), self.rates_per_ms))
        return x, survival

    def sf(self, x_ms: ArrayLike) -> np.ndarray:
        x, survival = self._terms(x_ms)
        return np.where(x < 0, 1.0, survival @ self.weights)

    def cdf(self, x_ms: ArrayLike) -> np.ndarray:
        x = np.asarray(x_ms, dtype=float)
        per_phase = -np.expm1(-np.multiply.outer(np.maximum(x, 0.0), self.rates_per_ms))
        return np.where(x < 0, 0.0, per_phase @ self.weights)

    def pdf(self, x_ms: ArrayLike) -> np.ndarray:
        x, survival = self._terms(x_ms)
        return np.where(x < 0, 0.0, survival @ (self.weights * self.rates_per_ms))

    def to_phase_type(self) -> PhaseType:
        """The same law as a PhaseType with a diagonal sub-generator."""
        return PhaseType(self.weights, np.diag(-self.rates_per_ms))

    def rescaled(self, factor: float) -> HyperExponential:
        return HyperExponential(self.weights, self.rates_per_ms / finite_number(factor, "factor", positive=True))

    def to_dict(self) -> dict[str, Any]:
        return {"family": self.family, "weights": self.weights.tolist(), "rates_per_ms": self.rates_per_ms.tolist()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HyperExponential:
        require_keys(data, cls.family, ("weights", "rates_per_ms"))
        return cls(data["weights"], data["rates_per_ms"])
