"""fit_candidates / fit_family: each family recovers known parameters; bad input gives clean errors.

Recovery tolerance: |estimate − truth| ≤ 4 bootstrap standard errors, from B refits on samples
drawn from the fitted law (parametric bootstrap: resampling the data is inconsistent for the
shifted exponential's location, a minimum). With B = 20 the SE estimate is within ~±30% at worst,
so 4·SE̅ is still ≥ 2.8 true SEs (≥ 99.5% coverage per parameter).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable

import numpy as np
import pytest
import scipy.stats

from simulator.distributions import Distribution, HyperExponential, Mixture, PhaseType, ScipyFrozen
from simulator.fitting import FAMILIES, em, fit_candidates, fit_family
from simulator.fitting.candidates import anderson_darling

Z = 4.0
RESAMPLES = 20
N = 2000


def _scipy_params(*names: str) -> Callable[[dict], np.ndarray]:
    return lambda d: np.array([d["params"].get(name, 0.0) for name in names])


def _mixture_params(d: dict) -> np.ndarray:
    """Weights, log-sds and scales of a lognormal mixture, components ordered by scale."""
    parts = sorted(zip(d["weights"], d["components"]), key=lambda wc: wc[1]["params"]["scale"])
    return np.array([v for w, c in parts for v in (w, c["params"]["s"], c["params"]["scale"])])


def _h2_params(d: dict) -> np.ndarray:
    order = np.argsort(d["rates_per_ms"])
    return np.concatenate([np.asarray(d["weights"])[order], np.asarray(d["rates_per_ms"])[order]])


def _lognormal_mixture(weights, sds, scales) -> Mixture:
    return Mixture(weights, [ScipyFrozen("lognorm", {"s": s, "scale": c}) for s, c in zip(sds, scales)])


# family → (true law, true parameter vector, extractor from FitResult.params)
CASES = {
    "exponential": (ScipyFrozen("expon", {"scale": 2.0}), [2.0], _scipy_params("scale")),
    "shifted_exponential": (
        ScipyFrozen("expon", {"loc": 1.5, "scale": 2.0}),
        [1.5, 2.0],
        _scipy_params("loc", "scale"),
    ),
    "gamma": (ScipyFrozen("gamma", {"a": 2.5, "scale": 1.2}), [2.5, 1.2], _scipy_params("a", "scale")),
    "lognormal": (ScipyFrozen("lognorm", {"s": 0.5, "scale": 3.0}), [0.5, 3.0], _scipy_params("s", "scale")),
    "lognormal3": (
        ScipyFrozen("lognorm", {"s": 0.6, "loc": 2.0, "scale": 1.5}),
        [0.6, 2.0, 1.5],
        _scipy_params("s", "loc", "scale"),
    ),
    "weibull": (ScipyFrozen("weibull_min", {"c": 1.6, "scale": 2.0}), [1.6, 2.0], _scipy_params("c", "scale")),
    "hyperexponential2": (HyperExponential([0.7, 0.3], [1.0, 0.1]), [0.3, 0.7, 0.1, 1.0], _h2_params),
    "lognormal_mixture2": (
        _lognormal_mixture([0.7, 0.3], [0.15, 0.2], [2.0, 6.0]),
        [0.7, 0.15, 2.0, 0.3, 0.2, 6.0],
        _mixture_params,
    ),
    "lognormal_mixture3": (
        _lognormal_mixture([0.5, 0.3, 0.2], [0.1, 0.1, 0.1], [1.0, 3.0, 9.0]),
        [0.5, 0.1, 1.0, 0.3, 0.1, 3.0, 0.2, 0.1, 9.0],
        _mixture_params,
    ),
}


def _bootstrap_se(law: Distribution, n: int, refit: Callable[[np.ndarray], np.ndarray], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    estimates = [refit(law.sample(rng, n)) for _ in range(RESAMPLES)]
    return np.std(estimates, axis=0, ddof=1)


@pytest.mark.parametrize("family", sorted(CASES))
def test_fit_recovers_true_parameters_within_bootstrap_error(family):
    law, truth, extract = CASES[family]
    samples = law.sample(np.random.default_rng(11), N)
    fit = fit_family(samples, family)
    assert fit.usable, fit.notes
    estimate = extract(fit.params)
    se = _bootstrap_se(fit.distribution(), N, lambda x: extract(fit_family(x, family).params), seed=12)
    assert np.all(np.abs(estimate - np.asarray(truth)) <= Z * se), (estimate, truth, se)


def test_phase_type_finds_the_true_hyper_erlang_structure_and_rates():
    weights, shapes, rates = [0.6, 0.4], [3, 1], [3.0, 0.25]
    samples = PhaseType.hyper_erlang(weights, shapes, rates).sample(np.random.default_rng(13), N)
    fit = fit_family(samples, "phase_type")
    assert fit.usable and "shapes (3, 1)" in fit.notes[0]
    assert fit.k == 4  # 2 weights-and-rates pairs less one, plus the configuration choice

    def extract(x: np.ndarray) -> np.ndarray:
        law = em.fit_hyper_erlang(x, shapes).distribution
        return np.array([law.alpha[0], -law.T[0, 0], -law.T[3, 3]])

    estimate = extract(samples)
    truth = np.array([weights[0], rates[0], rates[1]])
    law = fit.distribution()
    assert law.alpha[0] == pytest.approx(estimate[0], rel=1e-6)
    assert np.all(np.abs(estimate - truth) <= Z * _bootstrap_se(law, N, extract, seed=14))


def test_every_usable_result_is_finite_json_and_rebuilds():
    samples = ScipyFrozen("lognorm", {"s": 0.4, "scale": 2.0}).sample(np.random.default_rng(1), 1500)
    results = fit_candidates(samples)
    assert [r.family for r in results] == list(FAMILIES)
    for result in results:
        assert result.usable, (result.family, result.notes)
        data = json.loads(json.dumps(result.to_dict()))
        assert data["n"] == 1500 and "optimistic" in data["pvalue_caveat"]
        numbers = [
            result.log_likelihood,
            result.aic,
            result.bic,
            result.ks_statistic,
            result.ks_pvalue,
            result.ad_statistic,
        ]
        assert all(math.isfinite(v) for v in numbers)
        assert result.aic == pytest.approx(2 * result.k - 2 * result.log_likelihood)
        assert result.bic == pytest.approx(result.k * math.log(1500) - 2 * result.log_likelihood)
        assert set(result.fitted_quantiles_ms) == {"p50", "p99", "p99.9"}
        law = result.distribution()
        assert result.log_likelihood == pytest.approx(float(np.sum(np.log(law.pdf(samples)))), rel=1e-9)


def test_fits_are_deterministic():
    samples = HyperExponential([0.5, 0.5], [1.0, 0.2]).sample(np.random.default_rng(2), 1000)
    assert [r.to_dict() for r in fit_candidates(samples)] == [r.to_dict() for r in fit_candidates(samples)]


def test_anderson_darling_matches_scipy_for_the_exponential():
    samples = np.random.default_rng(3).exponential(2.0, 500)
    fit = fit_family(samples, "exponential")
    reference = scipy.stats.anderson(samples, dist="expon", method="interpolate").statistic
    assert anderson_darling(np.sort(samples), fit.distribution()) == pytest.approx(reference, rel=1e-9)


@pytest.mark.parametrize("factor", [1e-200, 1e200])
def test_huge_and_tiny_times_fit_like_rescaled_data(factor):
    samples = ScipyFrozen("gamma", {"a": 2.0, "scale": 1.0}).sample(np.random.default_rng(4), 500)
    for family in ("gamma", "lognormal", "weibull", "hyperexponential2", "lognormal3", "phase_type"):
        plain, scaled = fit_family(samples, family), fit_family(samples * factor, family)
        assert scaled.usable, (family, scaled.notes)
        assert scaled.log_likelihood == pytest.approx(plain.log_likelihood - 500 * math.log(factor), rel=1e-6)
        assert scaled.fitted_quantiles_ms["p99"] == pytest.approx(plain.fitted_quantiles_ms["p99"] * factor, rel=1e-6)


def test_zeros_make_log_time_families_unusable_with_a_reason():
    samples = np.concatenate([np.zeros(5), np.random.default_rng(5).exponential(1.0, 200)])
    results = {r.family: r for r in fit_candidates(samples)}
    for family in ("gamma", "lognormal", "weibull", "lognormal_mixture2", "lognormal_mixture3", "phase_type"):
        assert not results[family].usable and "5 sample(s) are 0" in results[family].notes[0]
        assert results[family].aic is None and results[family].params is None
        with pytest.raises(ValueError, match="unusable"):
            results[family].distribution()
    for family in ("exponential", "shifted_exponential", "hyperexponential2", "lognormal3"):
        assert results[family].usable, (family, results[family].notes)


@pytest.mark.parametrize(
    ("samples", "message"),
    [
        ([3.0] * 50, "all 50 samples equal 3 ms"),
        ([1.0, 2.0, 3.0], "at least 10 samples"),
        ([1.0] * 9 + [float("nan")] + [2.0], "not finite"),
        ([1.0] * 9 + [-1.0, 2.0], "≥ 0"),
        (np.ones((4, 4)), "1-D"),
    ],
)
def test_degenerate_samples_raise_clear_errors(samples, message):
    with pytest.raises(ValueError, match=message):
        fit_candidates(samples)


def test_unknown_family_is_rejected():
    with pytest.raises(ValueError, match="unknown families \\['pareto'\\]"):
        fit_candidates(np.arange(1.0, 20.0), ["gamma", "pareto"])


def test_em_reports_its_iteration_cap():
    samples = ScipyFrozen("gamma", {"a": 2.0, "scale": 1.0}).sample(np.random.default_rng(6), 500)
    fit = em.fit_lognormal_mixture(samples, 3, max_iter=3)
    assert fit.iterations == 3 and not fit.converged
