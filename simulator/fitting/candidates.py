"""Fit every candidate family to a sample of service times by maximum likelihood and score each fit.

Families (times in ms; k = free parameters):

====================  ==  ===========================================================================
exponential            1  MLE (scale = mean)
shifted_exponential    2  loc free; the unbiased (UMVU) estimates loc = min − scale/n,
                          scale = n(mean − min)/(n − 1), since the MLE loc = min puts a sample on
                          the density's edge (F = 0 there, so Anderson–Darling is undefined)
gamma                  2  scipy.stats.gamma.fit, loc = 0
lognormal              2  closed-form MLE on log time, loc = 0
lognormal3             3  loc free below the minimum: profile likelihood over loc (closed form in
                          μ, σ), maximized on log(min − loc) ∈ [log(δ/10³), log(10³·δ)] with
                          δ = median − min; the bound keeps away from the degenerate likelihood
                          spike as loc → min (Hill 1963)
weibull                2  scipy.stats.weibull_min.fit, loc = 0
hyperexponential2      3  EM (simulator.fitting.em)
lognormal_mixture2/3  5/8 EM on log time
phase_type            2M  hyper-Erlang EM of order ≤ 4 (M branches), best shape configuration by AIC;
                          k counts 2M − 1 weights and rates plus 1 for the chosen configuration
====================  ==  ===========================================================================

Fits run on data divided by its median (so huge or tiny times do not overflow) and are rescaled
back. Every score is computed against the fitted law on the original data. A family that cannot
be fitted (zeros for a log-time family, a numeric failure) gives a result marked unusable with
the reason, never an exception or NaNs.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from simulator.distributions import Distribution, ScipyFrozen, from_dict
from simulator.fitting import em
from simulator.fitting._validation import validated_samples

QUANTILE_LEVELS = {"p50": 0.5, "p99": 0.99, "p99.9": 0.999}
PVALUE_CAVEAT = (
    "KS p-values use parameters fitted to these same samples, so they are optimistic (too high); "
    "compare statistics across families rather than trusting the p-value as a test"
)
_NUMERIC_ERRORS = (ValueError, ArithmeticError, RuntimeError, np.linalg.LinAlgError)


@dataclass(frozen=True)
class FitResult:
    """One family fitted to one sample: parameters, likelihood scores, goodness of fit and quantiles.

    ``params`` is the fitted distribution's ``to_dict()`` (rebuild it with :meth:`distribution`);
    the numbers are None when ``usable`` is False, and ``notes`` says why.
    """

    family: str
    n: int
    k: int
    usable: bool
    params: dict[str, Any] | None = None
    log_likelihood: float | None = None
    aic: float | None = None
    bic: float | None = None
    ks_statistic: float | None = None
    ks_pvalue: float | None = None
    ad_statistic: float | None = None
    fitted_quantiles_ms: dict[str, float] | None = None
    data_quantiles_ms: dict[str, float] | None = None
    notes: tuple[str, ...] = ()
    pvalue_caveat: str = field(default=PVALUE_CAVEAT, repr=False)

    def distribution(self) -> Distribution:
        """The fitted law as a simulator.distributions object."""
        if self.params is None:
            raise ValueError(f"{self.family} fit is unusable: {'; '.join(self.notes)}")
        return from_dict(self.params)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able fields."""
        return {
            "family": self.family,
            "n": self.n,
            "k": self.k,
            "usable": self.usable,
            "params": self.params,
            "log_likelihood": self.log_likelihood,
            "aic": self.aic,
            "bic": self.bic,
            "ks_statistic": self.ks_statistic,
            "ks_pvalue": self.ks_pvalue,
            "ad_statistic": self.ad_statistic,
            "fitted_quantiles_ms": self.fitted_quantiles_ms,
            "data_quantiles_ms": self.data_quantiles_ms,
            "notes": list(self.notes),
            "pvalue_caveat": self.pvalue_caveat,
        }


@dataclass(frozen=True)
class _Fitted:
    distribution: Distribution
    k: int
    notes: tuple[str, ...] = ()


def _exponential(y: np.ndarray) -> _Fitted:
    return _Fitted(ScipyFrozen("expon", {"scale": float(y.mean())}), 1)


def _shifted_exponential(y: np.ndarray) -> _Fitted:
    n, minimum = y.size, float(y.min())
    scale = n * (float(y.mean()) - minimum) / (n - 1)
    return _Fitted(ScipyFrozen("expon", {"loc": minimum - scale / n, "scale": scale}), 2)


def _gamma(y: np.ndarray) -> _Fitted:
    import scipy.stats

    shape, _, scale = scipy.stats.gamma.fit(y, floc=0)
    return _Fitted(ScipyFrozen("gamma", {"a": float(shape), "scale": float(scale)}), 2)


def _lognormal(y: np.ndarray) -> _Fitted:
    logs = np.log(y)
    return _Fitted(ScipyFrozen("lognorm", {"s": float(logs.std()), "scale": float(np.exp(logs.mean()))}), 2)


def _lognormal3(y: np.ndarray) -> _Fitted:
    from scipy.optimize import minimize_scalar

    minimum = float(y.min())
    spread = float(np.median(y)) - minimum
    if spread <= 0:
        raise ValueError("the median equals the minimum, so the location of a 3-parameter lognormal is not identified")

    def negative_profile(log_gap: float) -> float:
        logs = np.log(y - (minimum - math.exp(log_gap)))
        return float(logs.sum() + y.size * math.log(logs.std()))

    bounds = (math.log(spread) - 3 * math.log(10), math.log(spread) + 3 * math.log(10))
    grid = np.linspace(*bounds, 61)
    best = int(np.argmin([negative_profile(g) for g in grid]))
    bracket = (grid[max(best - 1, 0)], grid[min(best + 1, grid.size - 1)])
    log_gap = minimize_scalar(negative_profile, bounds=bracket, method="bounded", options={"xatol": 1e-10}).x
    loc = minimum - math.exp(log_gap)
    logs = np.log(y - loc)
    notes = (
        ("loc at the bound of its search range (min − loc ∈ [δ/1000, 1000δ])",) if best in (0, grid.size - 1) else ()
    )
    return _Fitted(
        ScipyFrozen("lognorm", {"s": float(logs.std()), "loc": loc, "scale": float(np.exp(logs.mean()))}), 3, notes
    )


def _weibull(y: np.ndarray) -> _Fitted:
    import scipy.stats

    shape, _, scale = scipy.stats.weibull_min.fit(y, floc=0)
    return _Fitted(ScipyFrozen("weibull_min", {"c": float(shape), "scale": float(scale)}), 2)


def _from_em(fit: em.EMFit) -> _Fitted:
    notes = [fit.description]
    if not fit.converged:
        notes.append(f"EM stopped at its iteration cap ({fit.iterations}) before converging")
    return _Fitted(fit.distribution, fit.free_parameters, tuple(notes))


# family → (fitter on median-normalized data, needs every sample > 0)
FAMILIES: dict[str, tuple[Callable[[np.ndarray], _Fitted], bool]] = {
    "exponential": (_exponential, False),
    "shifted_exponential": (_shifted_exponential, False),
    "gamma": (_gamma, True),
    "lognormal": (_lognormal, True),
    "lognormal3": (_lognormal3, False),
    "weibull": (_weibull, True),
    "hyperexponential2": (lambda y: _from_em(em.fit_hyperexponential(y, 2)), False),
    "lognormal_mixture2": (lambda y: _from_em(em.fit_lognormal_mixture(y, 2)), True),
    "lognormal_mixture3": (lambda y: _from_em(em.fit_lognormal_mixture(y, 3)), True),
    "phase_type": (lambda y: _from_em(em.fit_phase_type(y)), True),
}


def anderson_darling(sorted_samples: np.ndarray, distribution: Distribution) -> float:
    """A² = −n − (1/n) Σ (2i − 1)[ln F(x_(i)) + ln S(x_(n+1−i))] against the fitted law.

    S comes from the law's sf rather than 1 − F, so the tail terms keep their accuracy.
    """
    n = sorted_samples.size
    tiny = np.finfo(float).tiny
    log_cdf = np.log(np.maximum(distribution.cdf(sorted_samples), tiny))
    log_sf = np.log(np.maximum(distribution.sf(sorted_samples), tiny))
    weights = 2 * np.arange(1, n + 1) - 1
    return float(-n - np.sum(weights * (log_cdf + log_sf[::-1])) / n)


def _score(family: str, samples: np.ndarray, fitted: _Fitted, scale_ms: float) -> FitResult:
    import scipy.stats

    n = samples.size
    distribution = fitted.distribution.rescaled(scale_ms)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        log_likelihood = float(np.sum(np.log(distribution.pdf(samples))))
    if not math.isfinite(log_likelihood):
        return FitResult(
            family,
            n,
            fitted.k,
            False,
            notes=(*fitted.notes, "a sample has zero density under the fit (log-likelihood −inf)"),
        )
    ordered = np.sort(samples)
    ks = scipy.stats.kstest(ordered, distribution.cdf)
    fitted_quantiles = distribution.ppf(list(QUANTILE_LEVELS.values()))
    data_quantiles = np.quantile(samples, list(QUANTILE_LEVELS.values()))
    numbers = {
        "log_likelihood": log_likelihood,
        "aic": 2 * fitted.k - 2 * log_likelihood,
        "bic": fitted.k * math.log(n) - 2 * log_likelihood,
        "ks_statistic": float(ks.statistic),
        "ks_pvalue": float(ks.pvalue),
        "ad_statistic": anderson_darling(ordered, distribution),
    }
    bad = [name for name, value in numbers.items() if not math.isfinite(value)]
    bad += [f"fitted {name}" for name, value in zip(QUANTILE_LEVELS, fitted_quantiles) if not math.isfinite(value)]
    if bad:
        return FitResult(family, n, fitted.k, False, notes=(*fitted.notes, f"non-finite score(s): {', '.join(bad)}"))
    return FitResult(
        family,
        n,
        fitted.k,
        True,
        params=distribution.to_dict(),
        fitted_quantiles_ms=dict(zip(QUANTILE_LEVELS, map(float, fitted_quantiles))),
        data_quantiles_ms=dict(zip(QUANTILE_LEVELS, map(float, data_quantiles))),
        notes=fitted.notes,
        **numbers,
    )


def fit_family(samples_ms: ArrayLike, family: str) -> FitResult:
    """Fit one family (a key of :data:`FAMILIES`); an unusable result says why instead of raising."""
    samples = validated_samples(samples_ms)
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; choose from {sorted(FAMILIES)}")
    fitter, needs_positive = FAMILIES[family]
    zeros = int(np.count_nonzero(samples == 0))
    if needs_positive and zeros:
        return FitResult(family, samples.size, 0, False, notes=(f"needs every sample > 0 ms; {zeros} sample(s) are 0",))
    median = float(np.median(samples))
    scale_ms = median if median > 0 else float(samples.mean())
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            fitted = fitter(samples / scale_ms)
        return _score(family, samples, fitted, scale_ms)
    except _NUMERIC_ERRORS as error:
        return FitResult(family, samples.size, 0, False, notes=(f"fit failed: {error}",))


def fit_candidates(samples_ms: ArrayLike, families: Sequence[str] | None = None) -> list[FitResult]:
    """Fit each family (default: all of :data:`FAMILIES`) by maximum likelihood, in the given order.

    Raises ValueError for samples no family can use (fewer than 10, non-finite, negative, all equal).
    """
    samples = validated_samples(samples_ms)
    names = list(FAMILIES) if families is None else list(families)
    unknown = sorted(set(names) - set(FAMILIES))
    if unknown:
        raise ValueError(f"unknown families {unknown}; choose from {sorted(FAMILIES)}")
    if not names:
        raise ValueError(f"families must name at least one of {sorted(FAMILIES)}")
    return [fit_family(samples, name) for name in names]
