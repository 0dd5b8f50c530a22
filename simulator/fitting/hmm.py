"""Fit a Markov-modulated (hidden Markov) service-time model: a few hidden states, lognormal times in each.

The model (:class:`simulator.distributions.LognormalHMM`) captures slow and fast stretches that
persist: the state follows a Markov chain from one request to the next, and a request's time is
lognormal with that state's parameters. Fitted by Baum–Welch (Rabiner 1989, with per-step
scaling) on log times, i.e. a Gaussian HMM on log x; the likelihood of the times differs by the
Jacobian −Σ log x. A small own implementation (the passes over time compiled with numba, in
:mod:`simulator.distributions.hmm_passes`) avoids a heavy dependency (hmmlearn pulls in
scikit-learn) for 2–3 states. Starting points are deterministic
(states from equal-count groups of the sorted log times, persistent transitions), and each
log-sd is floored at 1% of the data's log-sd so that a state cannot collapse onto repeated values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from simulator.distributions.hmm_passes import hmm_backward, hmm_forward
from simulator.distributions.process import LognormalHMM, hmm_emissions
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
    for iteration in range(1, max_iter + 1):
        emissions, offsets = hmm_emissions(logs, mu, sigma)
        alpha, scales = hmm_forward(emissions, initial, transition)
        log_likelihood = float(np.sum(np.log(scales)) + offsets.sum() - logs.sum())
        beta = hmm_backward(emissions, transition, scales)
        posterior = alpha * beta
        posterior /= posterior.sum(axis=1, keepdims=True)
        pair_counts = transition * (alpha[:-1].T @ (emissions[1:] * beta[1:] / scales[1:, None]))
        initial = posterior[0]
        outgoing = pair_counts.sum(axis=1, keepdims=True)
        transition = np.where(outgoing > 0, pair_counts / np.maximum(outgoing, 1e-300), transition)  # a state never left keeps its row
        mass = np.maximum(posterior.sum(axis=0), 1e-300)
        mu = posterior.T @ logs / mass
        sigma = np.maximum(np.sqrt(np.einsum("ns,ns->s", posterior, (logs[:, None] - mu) ** 2) / mass), sd_floor)
        if log_likelihood - previous <= tol * n:
            converged = True
            break
        previous = log_likelihood
    order = np.argsort(mu)
    model = LognormalHMM(transition[np.ix_(order, order)], mu[order], sigma[order])
    with np.errstate(divide="ignore", invalid="ignore"):  # a state the chain never enters: not finite, callers check
        final = model.log_likelihood(np.exp(logs))
    free = states * (states - 1) + 2 * states
    return HMMFit(model, final, free, 2 * free - 2 * final, free * math.log(n) - 2 * final, iteration, converged)
