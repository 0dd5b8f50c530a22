"""simulator.distributions: sampled moments and cdfs agree with the closed forms, and forms agree with each other.

Tolerances are confidence bounds, never tuned: a sample k-th moment is checked within 4 standard
errors computed from the analytic moment of order 2k; an empirical cdf within the
Dvoretzky–Kiefer–Wolfowitz band at α = 10⁻⁴.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import scipy.stats

from simulator.distributions import (
    Distribution,
    HyperExponential,
    Mixture,
    PhaseType,
    Scaled,
    ScipyFrozen,
    Shifted,
    from_dict,
)

Z = 4.0
DKW_ALPHA = 1e-4
N = 100_000

# A PH with feedback (phase 2 can return to phase 1) so sampling walks a non-acyclic chain.
CYCLIC_PH = PhaseType([0.7, 0.3, 0.0], [[-2.0, 1.5, 0.0], [0.5, -3.0, 2.0], [0.0, 0.0, -1.0]])
H2 = HyperExponential([0.3, 0.7], [0.2, 2.0])
MIXTURE = Mixture(
    [0.5, 0.3, 0.2],
    [
        ScipyFrozen("lognorm", {"s": 0.3, "scale": 2.0}),
        Shifted(H2, 1.0),
        Mixture([0.5, 0.5], [ScipyFrozen("gamma", {"a": 3.0, "scale": 0.5}), Scaled(CYCLIC_PH, 2.0)]),
    ],
)
LAWS = {
    "cyclic_ph": CYCLIC_PH,
    "h2": H2,
    "mixture": MIXTURE,
    "hyper_erlang": PhaseType.hyper_erlang([0.6, 0.4], [3, 1], [3.0, 0.5]),
}


def dkw_bound(n: int) -> float:
    return math.sqrt(math.log(2 / DKW_ALPHA) / (2 * n))


@pytest.fixture(scope="module", params=sorted(LAWS))
def law_and_samples(request: pytest.FixtureRequest) -> tuple[Distribution, np.ndarray]:
    law = LAWS[request.param]
    return law, law.sample(np.random.default_rng(7), N)


def test_sample_moments_match_analytic_within_confidence(law_and_samples):
    law, samples = law_and_samples
    for k in (1, 2, 3):
        standard_error = math.sqrt((law.moment(2 * k) - law.moment(k) ** 2) / samples.size)
        assert abs(np.mean(samples**k) - law.moment(k)) <= Z * standard_error, f"moment {k}"


def test_empirical_cdf_within_dkw_band(law_and_samples):
    law, samples = law_and_samples
    ordered = np.sort(samples)
    fitted = law.cdf(ordered)
    upper = np.arange(1, ordered.size + 1) / ordered.size
    distance = max(np.max(upper - fitted), np.max(fitted - (upper - 1 / ordered.size)))
    assert distance <= dkw_bound(ordered.size)


@pytest.mark.parametrize("name", sorted(LAWS))
def test_ppf_inverts_cdf_to_1e9_relative(name):
    law = LAWS[name]
    levels = np.array([1e-9, 1e-4, 0.01, 0.25, 0.5, 0.9, 0.99, 0.999, 1 - 1e-9])
    quantiles = law.ppf(levels)
    assert np.all(np.diff(quantiles) > 0)
    # cdf(x) − q, divided by x·pdf(x), is the relative error of x.
    below = levels <= 0.5
    gap = np.where(below, law.cdf(quantiles) - levels, (1 - levels) - law.sf(quantiles))
    assert np.all(np.abs(gap) <= 1e-9 * quantiles * law.pdf(quantiles) + 1e-15)
    assert law.ppf(0.0) == law.support_lower_ms and law.ppf(1.0) == np.inf


def test_batched_expm_agrees_with_scipy():
    from scipy.linalg import expm

    from simulator.distributions.phase_type import batched_expm

    generator = CYCLIC_PH.T
    times = np.array([0.0, 1e-6, 0.3, 2.0, 17.0, 60.0])
    batched = batched_expm(generator[None, :, :] * times[:, None, None])
    for matrix, time in zip(batched, times):
        np.testing.assert_allclose(matrix, expm(generator * time), rtol=1e-10, atol=1e-16)


def test_single_phase_ph_is_the_exponential():
    rate = 0.8
    ph = PhaseType([1.0], [[-rate]])
    exponential = scipy.stats.expon(scale=1 / rate)
    x = np.array([0.0, 0.1, 1.0, 5.0, 30.0])
    np.testing.assert_allclose(ph.cdf(x), exponential.cdf(x), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(ph.sf(x), exponential.sf(x), rtol=1e-12)
    np.testing.assert_allclose(ph.pdf(x), exponential.pdf(x), rtol=1e-12)
    for k in (1, 2, 3, 4):
        assert ph.moment(k) == pytest.approx(math.factorial(k) / rate**k, rel=1e-12)
    levels = np.array([1e-9, 0.5, 0.999])
    np.testing.assert_allclose(ph.ppf(levels), -np.log1p(-levels) / rate, rtol=1e-9)


def test_hyperexponential_equals_its_phase_type():
    ph = H2.to_phase_type()
    x = np.linspace(0.0, 40.0, 81)
    for method in ("cdf", "sf", "pdf"):
        np.testing.assert_allclose(getattr(H2, method)(x), getattr(ph, method)(x), rtol=1e-12, atol=1e-15)
    for k in (1, 2, 3):
        assert H2.moment(k) == pytest.approx(ph.moment(k), rel=1e-12)
    levels = np.array([1e-6, 0.5, 0.99, 0.999])
    np.testing.assert_allclose(H2.ppf(levels), ph.ppf(levels), rtol=1e-9)


def test_erlang_branch_matches_scipy_gamma_far_into_the_tail():
    erlang = PhaseType.hyper_erlang([1.0], [4], [2.0])
    gamma = scipy.stats.gamma(4, scale=0.5)
    x = np.array([1e-3, 0.5, 2.0, 10.0, 25.0])
    np.testing.assert_allclose(erlang.cdf(x), gamma.cdf(x), rtol=1e-9)
    np.testing.assert_allclose(erlang.sf(x), gamma.sf(x), rtol=1e-9)
    np.testing.assert_allclose(erlang.pdf(x), gamma.pdf(x), rtol=1e-9)


def test_numeric_ppf_of_a_tiny_scale_and_of_an_unbounded_support():
    tiny = LAWS["hyper_erlang"].rescaled(1e-200)
    levels = np.array([1e-9, 0.5, 0.999])
    np.testing.assert_allclose(tiny.ppf(levels), 1e-200 * LAWS["hyper_erlang"].ppf(levels), rtol=1e-9)
    normal = scipy.stats.norm(loc=-3.0, scale=2.0)
    twin = Mixture([0.5, 0.5], [ScipyFrozen("norm", {"loc": -3.0, "scale": 2.0})] * 2)
    levels = np.array([1e-9, 0.1, 0.5, 0.9, 1 - 1e-9])
    np.testing.assert_allclose(twin.ppf(levels), normal.ppf(levels), rtol=1e-9)


def test_shifted_and_scaled_moments_follow_from_the_base():
    shift, factor = 1.5, 3.0
    for k in (1, 2, 3):
        expected_shifted = sum(math.comb(k, j) * shift ** (k - j) * H2.moment(j) for j in range(k + 1))
        assert Shifted(H2, shift).moment(k) == pytest.approx(expected_shifted, rel=1e-12)
        assert Scaled(H2, factor).moment(k) == pytest.approx(factor**k * H2.moment(k), rel=1e-12)
    assert Shifted(H2, shift).ppf(0.9) == pytest.approx(H2.ppf(0.9) + shift, rel=1e-12)
    assert Scaled(H2, factor).cdf(6.0) == pytest.approx(H2.cdf(2.0), rel=1e-12)


@pytest.mark.parametrize("name", sorted(LAWS))
def test_json_round_trip_rebuilds_the_same_law(name):
    law = LAWS[name]
    data = json.loads(json.dumps(law.to_dict()))
    rebuilt = from_dict(data)
    assert rebuilt.to_dict() == law.to_dict()
    x = np.linspace(0.1, 20, 9)
    np.testing.assert_allclose(rebuilt.cdf(x), law.cdf(x), rtol=1e-12)


@pytest.mark.parametrize("name", sorted(LAWS))
def test_sampling_is_reproducible_from_a_seed(name):
    law = LAWS[name]
    first = law.sample(np.random.default_rng(3), 1000)
    np.testing.assert_array_equal(first, law.sample(np.random.default_rng(3), 1000))
    assert first.shape == (1000,) and np.all(first >= law.support_lower_ms)


def test_rescaled_is_a_change_of_time_unit():
    for law in LAWS.values():
        rescaled = law.rescaled(1000.0)
        assert rescaled.mean() == pytest.approx(1000.0 * law.mean(), rel=1e-9)
        assert rescaled.cdf(1000.0 * 2.0) == pytest.approx(law.cdf(2.0), rel=1e-9)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: PhaseType([0.5, 0.4], [[-1, 0], [0, -1]]), "alpha must sum to 1"),
        (lambda: PhaseType([1.0], [[-1, 0], [0, -1]]), "T must be a 1×1"),
        (lambda: PhaseType([0.5, 0.5], [[-1, -0.5], [0, -1]]), "off-diagonal"),
        (lambda: PhaseType([1.0, 0.0], [[-1, 1], [1, -1]]), "absorption"),
        (lambda: PhaseType([1.0], [[0.5]]), "diagonal must be < 0"),
        (lambda: HyperExponential([0.5, 0.5], [1.0, -2.0]), "rates_per_ms"),
        (lambda: HyperExponential([0.5, 0.5], [1.0]), "one entry per phase"),
        (lambda: Mixture([1.0], [scipy.stats.norm()]), "components\\[0\\]"),
        (lambda: ScipyFrozen("not_a_law", {}), "continuous distribution of scipy.stats"),
        (lambda: ScipyFrozen("lognorm", {"sigma": 1.0}), "no parameter"),
        (lambda: ScipyFrozen("lognorm", {"s": -1.0}), "invalid parameter values"),
        (lambda: Scaled(H2, 0.0), "factor"),
        (lambda: Shifted(H2, math.inf), "shift_ms"),
        (lambda: from_dict({"weights": [1.0]}), "'family'"),
        (lambda: from_dict({"family": "nope"}), "unknown distribution family"),
        (lambda: from_dict({"family": "hyperexponential", "weights": [1.0]}), "missing \\['rates_per_ms'\\]"),
        (lambda: H2.ppf([0.5, 1.5]), "must lie in \\[0, 1\\]"),
        (lambda: H2.moment(1.5), "integer"),
    ],
)
def test_invalid_parameters_name_the_problem(build, message):
    with pytest.raises(ValueError, match=message):
        build()
