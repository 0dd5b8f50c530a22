"""Fit a Markov-modulated (hidden Markov) service-time model: a few hidden states, lognormal times in each.

The model (:class:`simulator.distributions.LognormalHMM`) captures slow and fast stretches that
persist: the state follows a Markov chain from one request to the next, and a request's time is
lognormal with that state's parameters. Fitted by Baum–Welch (Rabiner 1989, with per-step
scaling) on log times, i.e. a Gaussian HMM on log x; the likelihood of the times differs by the
Jacobian −Σ log x. With ``groups`` (say, the requests at the server when each call started) a
time is also multiplied by its group's factor, the first group's being 1: log x = μ_state +
b_group + noise, the states and the groups' offsets fitted together (a weighted least-squares
M-step), so that slow stretches that come with long queues are not taken for a load effect, nor the
other way round. A small own implementation (loops over time in numpy) avoids a heavy
dependency (hmmlearn pulls in scikit-learn) for 2–3 states. Starting points are deterministic
(states from equal-count groups of the sorted log times, persistent transitions), and each
log-sd is floored at 1% of the data's log-sd so that a state cannot collapse onto repeated values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from simulator.distributions.process import LognormalHMM, hmm_emissions, hmm_forward
from simulator.fitting._validation import check_count, positive_samples

_SD_FLOOR_FRACTION = 0.01
_INITIAL_STAY_PROBABILITY = 0.9


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
    group_factors: np.ndarray | None = None  # with ``groups``: each group's factor on the times (the first's is 1)


def fit_lognormal_hmm(
    samples_ms: ArrayLike, states: int = 2, max_iter: int = 100, tol: float = 1e-6, groups: ArrayLike | None = None
) -> HMMFit:
    """Baum–Welch for a ``states``-state (2 or 3) lognormal HMM, in sample order; with ``groups`` (an integer
    0, 1, … per sample) each group's factor on the times as well (group 0's is 1).

    Stops after ``max_iter`` iterations or when the log-likelihood per sample gains less than ``tol``.
    """
    logs = np.log(positive_samples(samples_ms, min_n=20))
    if states not in (2, 3):
        raise ValueError(f"states must be 2 or 3, got {states!r}")
    check_count(max_iter, "max_iter", 1)
    n = logs.size
    members = _group_indicators(groups, n)
    group_logs = np.zeros(0 if members is None else members.shape[1])
    offsets_log = np.zeros(n)
    sd_floor = _SD_FLOOR_FRACTION * logs.std()
    starting = np.array_split(np.sort(logs), states)
    mu = np.array([part.mean() for part in starting])
    sigma = np.array([max(part.std(), sd_floor) for part in starting])
    off = (1 - _INITIAL_STAY_PROBABILITY) / (states - 1)
    transition = np.full((states, states), off) + np.eye(states) * (_INITIAL_STAY_PROBABILITY - off)
    initial = np.full(states, 1.0 / states)
    previous = -np.inf
    converged = False
    for iteration in range(1, max_iter + 1):
        emissions, offsets = hmm_emissions(logs - offsets_log, mu, sigma)
        alpha, scales = hmm_forward(emissions, initial, transition)
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
        if members is None:
            mu = posterior.T @ logs / mass
        else:
            mu, group_logs = _states_and_groups(logs, posterior, sigma, members)
            offsets_log = members @ group_logs
        residuals = logs[:, None] - offsets_log[:, None] - mu
        sigma = np.maximum(np.sqrt(np.einsum("ns,ns->s", posterior, residuals**2) / mass), sd_floor)
        if log_likelihood - previous <= tol * n:
            converged = True
            break
        previous = log_likelihood
    order = np.argsort(mu)
    model = LognormalHMM(transition[np.ix_(order, order)], mu[order], sigma[order])
    final = model.log_likelihood(np.exp(logs - offsets_log)) - float(offsets_log.sum())  # the Jacobian of the groups' factors
    free = states * (states - 1) + 2 * states + (0 if members is None else members.shape[1])
    factors = None if members is None else np.exp(np.concatenate([[0.0], group_logs]))
    return HMMFit(model, final, free, 2 * free - 2 * final, free * math.log(n) - 2 * final, iteration, converged, factors)


def _group_indicators(groups: ArrayLike | None, n: int) -> np.ndarray | None:
    """``[sample, g − 1]``: 1 where the sample is in group g ≥ 1 (group 0 is the reference); None without groups."""
    if groups is None:
        return None
    labels = np.asarray(groups)
    if labels.shape != (n,) or not np.issubdtype(labels.dtype, np.integer) or labels.min(initial=0) < 0:
        raise ValueError(f"groups: one integer ≥ 0 per sample ({n})")
    count = int(labels.max(initial=0))
    if count == 0:
        return None
    sizes = np.bincount(labels, minlength=count + 1)
    if (sizes == 0).any():
        raise ValueError(f"groups: every group from 0 to {count} needs a sample; empty: {np.flatnonzero(sizes == 0).tolist()}")
    return (labels[:, None] == np.arange(1, count + 1)).astype(float)


def _states_and_groups(logs: np.ndarray, posterior: np.ndarray, sigma: np.ndarray, members: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The M-step of the states' log means and the groups' log offsets together: weighted least squares of
    log x on (state, group) with weights posterior / σ²."""
    weights = posterior / sigma**2
    per_sample = weights.sum(axis=1)
    states = weights.shape[1]
    normal = np.block([
        [np.diag(weights.sum(axis=0)), weights.T @ members],
        [members.T @ weights, np.diag(members.T @ per_sample)],
    ])
    solution = np.linalg.solve(normal, np.concatenate([weights.T @ logs, members.T @ (per_sample * logs)]))
    return solution[:states], solution[states:]
