"""A Markov-modulated (hidden Markov) service-time model: a few hidden states, lognormal times in each.

It captures slow and fast stretches that persist: the state follows a Markov chain from one
request to the next, and a request's time is lognormal with that state's parameters. Fitted by
Baum–Welch (Rabiner 1989, with per-step scaling) on log times, i.e. a Gaussian HMM on log x; the
likelihood of the times differs by the Jacobian −Σ log x. A small own implementation (loops over
time in numpy) avoids a heavy dependency (hmmlearn pulls in scikit-learn) for 2–3 states.
Starting points are deterministic (states from equal-count groups of the sorted log times,
persistent transitions), and each log-sd is floored at 1% of the data's log-sd so that a state
cannot collapse onto repeated values.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from simulator.fitting._validation import check_count, positive_samples

_SD_FLOOR_FRACTION = 0.01
_INITIAL_STAY_PROBABILITY = 0.9


def _stochastic_matrix(values: ArrayLike, states: int, name: str) -> np.ndarray:
    matrix = np.asarray(values, dtype=float)
    if matrix.shape != (states, states) or not np.all(np.isfinite(matrix)) or np.any(matrix < 0):
        raise ValueError(f"{name} must be a {states}×{states} matrix of probabilities ≥ 0, got {matrix.tolist()}")
    if not np.allclose(matrix.sum(axis=1), 1.0, atol=1e-9):
        raise ValueError(f"every row of {name} must sum to 1, got row sums {matrix.sum(axis=1).tolist()}")
    return matrix / matrix.sum(axis=1, keepdims=True)


class LognormalHMM:
    """Hidden states with transition matrix ``transition``; in state s a time (ms) is lognormal.

    Its log is normal with mean ``mu_log[s]`` and standard deviation ``sigma_log[s]``.
    """

    def __init__(self, transition: ArrayLike, mu_log: ArrayLike, sigma_log: ArrayLike) -> None:
        mu = np.asarray(mu_log, dtype=float)
        sigma = np.asarray(sigma_log, dtype=float)
        if mu.ndim != 1 or mu.size < 1 or not np.all(np.isfinite(mu)):
            raise ValueError(f"mu_log must be a non-empty 1-D list of finite log-ms means, got {mu.tolist()}")
        if sigma.shape != mu.shape or not np.all(np.isfinite(sigma)) or np.any(sigma <= 0):
            raise ValueError(f"sigma_log must have one finite value > 0 per state, got {sigma.tolist()}")
        self.transition = _stochastic_matrix(transition, mu.size, "transition")
        self.mu_log = mu
        self.sigma_log = sigma

    @property
    def states(self) -> int:
        return self.mu_log.size

    def stationary_distribution(self) -> np.ndarray:
        """π with π P = π (the left eigenvector of eigenvalue 1), normalized."""
        values, vectors = np.linalg.eig(self.transition.T)
        vector = np.real(vectors[:, np.argmin(np.abs(values - 1.0))])
        return np.abs(vector) / np.abs(vector).sum()

    def state_means_ms(self) -> np.ndarray:
        """E[time | state] = exp(μ + σ²/2)."""
        return np.exp(self.mu_log + self.sigma_log**2 / 2)

    def mean_ms(self) -> float:
        return float(self.stationary_distribution() @ self.state_means_ms())

    def sample_states(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """A state path of ``size`` steps started from the stationary distribution.

        Runs are drawn whole (geometric sojourn, then a jump to another state), so the Python loop
        is over runs, not requests.
        """
        size = check_count(size, "size", 0)
        path = np.empty(size, dtype=int)
        stay = np.diag(self.transition)
        state = int(rng.choice(self.states, p=self.stationary_distribution()))
        position = 0
        while position < size:
            run = size - position if stay[state] >= 1.0 else int(rng.geometric(1.0 - stay[state]))
            path[position : position + run] = state
            position += run
            if stay[state] < 1.0:
                leave = self.transition[state].copy()
                leave[state] = 0.0
                state = int(rng.choice(self.states, p=leave / leave.sum()))
        return path

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """A sequence of ``size`` times in ms along a fresh state path."""
        path = self.sample_states(rng, size)
        return np.exp(self.mu_log[path] + self.sigma_log[path] * rng.standard_normal(path.size))

    def log_likelihood(self, samples_ms: ArrayLike) -> float:
        """log p(x_1..x_n) of the times (ms), starting from the stationary distribution."""
        logs = np.log(positive_samples(samples_ms))
        emissions, offsets = _emissions(logs, self.mu_log, self.sigma_log)
        _, scales = _forward(emissions, self.stationary_distribution(), self.transition)
        return float(np.sum(np.log(scales)) + offsets.sum() - logs.sum())

    def to_dict(self) -> dict[str, Any]:
        return {
            "family": "lognormal_hmm",
            "transition": self.transition.tolist(),
            "mu_log": self.mu_log.tolist(),
            "sigma_log": self.sigma_log.tolist(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LognormalHMM:
        missing = [key for key in ("transition", "mu_log", "sigma_log") if key not in data]
        if missing:
            raise ValueError(f"lognormal_hmm dict is missing {missing}")
        return cls(data["transition"], data["mu_log"], data["sigma_log"])

    def __repr__(self) -> str:
        return f"LognormalHMM({self.to_dict()!r})"


def _emissions(logs: np.ndarray, mu: np.ndarray, sigma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n, S) Gaussian densities of log times, each row divided by its largest; and the log of that divisor."""
    log_density = -0.5 * ((logs[:, None] - mu) / sigma) ** 2 - np.log(sigma) - 0.5 * math.log(2 * math.pi)
    offsets = log_density.max(axis=1)
    return np.exp(log_density - offsets[:, None]), offsets


def _forward(emissions: np.ndarray, initial: np.ndarray, transition: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scaled forward pass: normalized α_t and the scale factors c_t."""
    n = emissions.shape[0]
    alpha = np.empty_like(emissions)
    scales = np.empty(n)
    current = initial * emissions[0]
    for t in range(n):
        if t:
            current = (current @ transition) * emissions[t]
        scale = current.sum()
        current = current / scale
        alpha[t] = current
        scales[t] = scale
    return alpha, scales


@dataclass(frozen=True)
class HMMFit:
    """A fitted LognormalHMM with its log-likelihood, AIC/BIC and how Baum–Welch ended."""

    model: LognormalHMM
    log_likelihood: float
    free_parameters: int
    aic: float
    bic: float
    iterations: int
    converged: bool


def fit_lognormal_hmm(samples_ms: ArrayLike, states: int = 2, max_iter: int = 100, tol: float = 1e-6) -> HMMFit:
    """Baum–Welch for a ``states``-state (2 or 3) lognormal HMM, in sample order.

    Stops after ``max_iter`` iterations or when the log-likelihood per sample gains less than ``tol``.
    """
    logs = np.log(positive_samples(samples_ms, min_n=20))
    if states not in (2, 3):
        raise ValueError(f"states must be 2 or 3, got {states!r}")
    check_count(max_iter, "max_iter", 1)
    n = logs.size
    sd_floor = _SD_FLOOR_FRACTION * logs.std()
    groups = np.array_split(np.sort(logs), states)
    mu = np.array([group.mean() for group in groups])
    sigma = np.array([max(group.std(), sd_floor) for group in groups])
    off = (1 - _INITIAL_STAY_PROBABILITY) / (states - 1)
    transition = np.full((states, states), off) + np.eye(states) * (_INITIAL_STAY_PROBABILITY - off)
    initial = np.full(states, 1.0 / states)
    previous = -np.inf
    converged = False
    for iteration in range(1, max_iter + 1):  # noqa: B007 (the count is reported)
        emissions, offsets = _emissions(logs, mu, sigma)
        alpha, scales = _forward(emissions, initial, transition)
        log_likelihood = float(np.sum(np.log(scales)) + offsets.sum() - logs.sum())
        beta = np.empty_like(alpha)
        beta[-1] = 1.0
        for t in range(n - 2, -1, -1):
            beta[t] = transition @ (emissions[t + 1] * beta[t + 1]) / scales[t + 1]
        posterior = alpha * beta
        posterior /= posterior.sum(axis=1, keepdims=True)
        pair_counts = transition * (alpha[:-1].T @ (emissions[1:] * beta[1:] / scales[1:, None]))
        initial = posterior[0]
        transition = pair_counts / pair_counts.sum(axis=1, keepdims=True)
        mass = np.maximum(posterior.sum(axis=0), 1e-300)
        mu = posterior.T @ logs / mass
        sigma = np.maximum(np.sqrt(np.einsum("ns,ns->s", posterior, (logs[:, None] - mu) ** 2) / mass), sd_floor)
        if log_likelihood - previous <= tol * n:
            converged = True
            break
        previous = log_likelihood
    order = np.argsort(mu)
    model = LognormalHMM(transition[np.ix_(order, order)], mu[order], sigma[order])
    final = model.log_likelihood(np.exp(logs))
    free = states * (states - 1) + 2 * states
    return HMMFit(model, final, free, 2 * free - 2 * final, free * math.log(n) - 2 * final, iteration, converged)
