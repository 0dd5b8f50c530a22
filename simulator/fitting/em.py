"""Expectation–maximization for the mixture families: hyperexponential, lognormal mixtures, hyper-Erlang PH.

All three are finite mixtures whose components have closed-form weighted maximum-likelihood
updates, so one EM loop serves them (Dempster, Laird & Rubin 1977):

* hyperexponential — mixture of exponentials (the hyper-Erlang case with every shape 1);
* lognormal mixture — a Gaussian mixture on log time; the density of a time x is the Gaussian
  density of log x times 1/x, so the log-likelihood differs by −Σ log x only;
* phase type — the hyper-Erlang EM of Thümmler, Buchholz & Telek (2006), "A novel approach for
  phase-type fitting with the EM algorithm", IEEE TDSC 3(3): a mixture of Erlang branches whose
  integer shapes are fixed per run; every shape configuration of total order ≤ ``max_order`` is
  fitted and the best by AIC kept (2·branches − 1 free parameters, plus one for the choice of
  configuration when compared with other families). Hyper-Erlang distributions are
  dense in the positive distributions and their EM has closed-form steps, unlike general PH EM
  (Asmussen, Nerman & Olsson 1996), which needs matrix exponentials per sample per iteration.

Starting points are deterministic (equal-count groups of the sorted data), so fits are
reproducible without a seed; each run stops at ``max_iter`` or when the mean log-likelihood per
sample gains less than ``tol``, and reports whether it converged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import ArrayLike

from simulator.distributions import Distribution, HyperExponential, Mixture, PhaseType, ScipyFrozen
from simulator.fitting._validation import check_count, positive_samples, validated_samples

DEFAULT_MAX_ITER = 1000
DEFAULT_TOL = 1e-7
# A lognormal component's log-sd may not fall below this fraction of the data's log-sd: without a
# floor one component can collapse onto a repeated (timer-quantized) value, with infinite likelihood.
_LOG_SD_FLOOR_FRACTION = 0.01
# A component whose total responsibility falls below this many samples keeps its last parameters.
_DEAD_COMPONENT_MASS = 1e-9


@dataclass(frozen=True)
class EMFit:
    """A fitted mixture: the distribution, its log-likelihood (of the times, in ms), and how EM ended."""

    distribution: Distribution
    log_likelihood: float
    free_parameters: int
    iterations: int
    converged: bool
    description: str


def _erlang_log_density(values: np.ndarray, shapes: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """rates ↦ (branches, n) Erlang log-densities, with the rate-free part computed once.

    The (r − 1) log x term is left out for r = 1, so a sample of 0 ms works with exponential branches.
    """
    from scipy.special import gammaln

    log_values = np.log(np.where(values > 0, values, 1.0))[None, :]
    column = shapes[:, None]
    constant = np.where(column > 1, (column - 1) * log_values, 0.0) - gammaln(column)
    return lambda rates: constant + column * np.log(rates)[:, None] - rates[:, None] * values[None, :]


def _run_em(
    log_components: Callable[[np.ndarray], np.ndarray],
    update: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray],
    params: np.ndarray,
    weights: np.ndarray,
    max_iter: int,
    tol: float,
) -> tuple[np.ndarray, np.ndarray, float, int, bool]:
    """Generic mixture EM over (components, n) arrays.

    ``log_components(params)`` gives the log-densities; ``update(responsibilities, mass, params)`` the
    weighted MLE of each component's parameters (a component whose mass is negligible keeps its
    old ones). Returns params, weights, log-likelihood, iterations, converged.
    """
    previous = -np.inf
    log_likelihood = -np.inf
    for iteration in range(1, max_iter + 1):
        with np.errstate(divide="ignore"):
            joint = log_components(params) + np.log(weights)[:, None]
        n = joint.shape[1]
        peak = joint.max(axis=0)
        if not np.all(np.isfinite(peak)):
            raise ValueError("EM reached a zero likelihood (a sample has zero density under every component)")
        responsibilities = np.exp(joint - peak)
        total = responsibilities.sum(axis=0)
        responsibilities /= total
        log_likelihood = float(np.sum(peak) + np.sum(np.log(total)))
        mass = responsibilities.sum(axis=1)
        weights = mass / n
        params = update(responsibilities, mass, params)
        if log_likelihood - previous <= tol * n:
            return params, weights, log_likelihood, iteration, True
        previous = log_likelihood
    return params, weights, log_likelihood, max_iter, False


def fit_hyper_erlang(
    samples_ms: ArrayLike, shapes: Sequence[int], max_iter: int = DEFAULT_MAX_ITER, tol: float = DEFAULT_TOL
) -> EMFit:
    """Hyper-Erlang EM (Thümmler–Buchholz–Telek 2006) for fixed branch shapes, e.g. (3, 1)."""
    values = validated_samples(samples_ms)
    shape_vector = np.array(sorted((check_count(r, "shape", 1) for r in shapes), reverse=True), dtype=float)
    if shape_vector.size == 0:
        raise ValueError("shapes must name at least one Erlang branch")
    if np.any(values == 0) and np.any(shape_vector > 1):
        raise ValueError("samples_ms contains 0 ms, which has zero density under an Erlang branch of shape > 1")
    # Larger shapes (less variable branches) start on the smaller values.
    groups = np.array_split(np.sort(values), shape_vector.size)
    rates = np.array([shape / max(group.mean(), 1e-300) for shape, group in zip(shape_vector, groups)])

    def update(responsibilities: np.ndarray, mass: np.ndarray, rates: np.ndarray) -> np.ndarray:
        fresh = shape_vector * mass / np.maximum(responsibilities @ values, 1e-300)
        return np.where(mass > _DEAD_COMPONENT_MASS, fresh, rates)

    rates, weights, log_likelihood, iterations, converged = _run_em(
        _erlang_log_density(values, shape_vector),
        update,
        rates,
        np.full(shape_vector.size, 1.0 / shape_vector.size),
        max_iter,
        tol,
    )
    int_shapes = [int(r) for r in shape_vector]
    if all(r == 1 for r in int_shapes):
        distribution: Distribution = HyperExponential(weights, rates)
    else:
        distribution = PhaseType.hyper_erlang(weights, int_shapes, rates)
    return EMFit(
        distribution,
        log_likelihood,
        2 * shape_vector.size - 1,
        iterations,
        converged,
        f"hyper-Erlang shapes {tuple(int_shapes)}",
    )


def fit_hyperexponential(
    samples_ms: ArrayLike, phases: int = 2, max_iter: int = DEFAULT_MAX_ITER, tol: float = DEFAULT_TOL
) -> EMFit:
    """Hyperexponential with ``phases`` exponential branches, by EM (zeros allowed)."""
    return fit_hyper_erlang(samples_ms, [1] * check_count(phases, "phases", 1), max_iter, tol)


def _shape_configurations(max_order: int) -> Iterator[tuple[int, ...]]:
    """Every multiset of Erlang shapes (non-increasing) with total order 2..max_order."""

    def partitions(total: int, largest: int) -> Iterator[tuple[int, ...]]:
        if total == 0:
            yield ()
            return
        for first in range(min(total, largest), 0, -1):
            for rest in partitions(total - first, first):
                yield (first, *rest)

    for order in range(2, max_order + 1):
        yield from partitions(order, order)


def fit_phase_type(
    samples_ms: ArrayLike, max_order: int = 4, max_iter: int = DEFAULT_MAX_ITER, tol: float = DEFAULT_TOL
) -> EMFit:
    """The hyper-Erlang PH of order 2..``max_order`` with the lowest AIC over all shape configurations.

    Its free parameters count the 2M − 1 weights and rates plus one for the chosen configuration,
    so that searching over structures is not free when it is compared with other families.
    """
    values = positive_samples(samples_ms)
    check_count(max_order, "max_order", 2)
    fits = [fit_hyper_erlang(values, shapes, max_iter, tol) for shapes in _shape_configurations(max_order)]
    best = min(fits, key=lambda fit: 2 * fit.free_parameters - 2 * fit.log_likelihood)
    return replace(best, free_parameters=best.free_parameters + 1)


def fit_lognormal_mixture(
    samples_ms: ArrayLike, components: int = 2, max_iter: int = DEFAULT_MAX_ITER, tol: float = DEFAULT_TOL
) -> EMFit:
    """Mixture of ``components`` lognormals: Gaussian-mixture EM on log time, with a floor on each log-sd."""
    values = positive_samples(samples_ms)
    count = check_count(components, "components", 1)
    logs = np.log(values)
    sd_floor = _LOG_SD_FLOOR_FRACTION * logs.std()
    groups = np.array_split(np.sort(logs), count)
    params = np.array([[group.mean(), max(group.std(), sd_floor)] for group in groups])

    row = logs[None, :]
    jacobian = -0.5 * np.log(2 * np.pi) - row  # the 1/(x√2π) of every lognormal density

    def log_components(params: np.ndarray) -> np.ndarray:
        means, sds = params[:, :1], params[:, 1:]
        return jacobian - 0.5 * ((row - means) / sds) ** 2 - np.log(sds)

    def update(responsibilities: np.ndarray, mass: np.ndarray, params: np.ndarray) -> np.ndarray:
        safe_mass = np.maximum(mass, 1e-300)
        means = responsibilities @ logs / safe_mass
        variances = np.einsum("mn,mn->m", responsibilities, (row - means[:, None]) ** 2) / safe_mass
        fresh = np.column_stack([means, np.maximum(np.sqrt(variances), sd_floor)])
        return np.where((mass > _DEAD_COMPONENT_MASS)[:, None], fresh, params)

    params, weights, log_likelihood, iterations, converged = _run_em(
        log_components, update, params, np.full(count, 1.0 / count), max_iter, tol
    )
    order = np.argsort(params[:, 0])
    lognormals = [ScipyFrozen("lognorm", {"s": float(sd), "scale": float(np.exp(mean))}) for mean, sd in params[order]]
    distribution = lognormals[0] if count == 1 else Mixture(weights[order], lognormals)
    return EMFit(distribution, log_likelihood, 3 * count - 1, iterations, converged, f"{count} lognormal components")
