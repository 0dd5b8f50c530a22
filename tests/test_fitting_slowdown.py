"""Concurrency slowdown f(k) = mean(k)/mean(1) with bootstrap intervals."""

from __future__ import annotations

import json

import numpy as np
import pytest

from simulator.fitting import Slowdown, fit_slowdown, fit_slowdown_by_batch

TRUE_FACTORS = {1: 1.0, 2: 1.3, 4: 2.0, 8: 3.5}


def measured(rng: np.random.Generator, base_ms: float = 2.0, count: int = 400) -> dict[int, np.ndarray]:
    return {k: base_ms * f * rng.lognormal(-0.02, 0.2, count) for k, f in TRUE_FACTORS.items()}


def test_factors_are_ratios_of_means_and_intervals_cover_the_truth():
    samples = measured(np.random.default_rng(0))
    slowdown = fit_slowdown(samples, resamples=2000, confidence=0.999)
    for k, truth in TRUE_FACTORS.items():
        assert slowdown.factor_at(k) == pytest.approx(samples[k].mean() / samples[1].mean())
        index = slowdown.concurrency.index(k)
        assert slowdown.ci_low[index] <= truth <= slowdown.ci_high[index]
    assert slowdown.factor_at(1) == 1.0 and slowdown.ci_low[0] == slowdown.ci_high[0] == 1.0


def test_intervals_are_seeded_and_round_trip():
    samples = measured(np.random.default_rng(1))
    first = fit_slowdown(samples, resamples=200, seed=3)
    assert first == fit_slowdown(samples, resamples=200, seed=3)
    assert Slowdown.from_dict(json.loads(json.dumps(first.to_dict()))) == first
    frame = first.to_frame()
    assert list(frame.columns) == ["concurrency", "factor", "ci_low", "ci_high"] and len(frame) == 4


def test_per_batch_size():
    rng = np.random.default_rng(2)
    by_batch = fit_slowdown_by_batch({1: measured(rng), 8: measured(rng, base_ms=6.0)}, resamples=200)
    assert sorted(by_batch) == [1, 8]
    assert by_batch[8].factor_at(4) == pytest.approx(2.0, rel=0.1)


def test_errors_name_what_is_missing():
    samples = measured(np.random.default_rng(3))
    with pytest.raises(ValueError, match="include 1"):
        fit_slowdown({2: samples[2]})
    with pytest.raises(ValueError, match="concurrency 3 was not measured; measured: \\[1, 2, 4, 8\\]"):
        fit_slowdown(samples, resamples=20).factor_at(3)
    with pytest.raises(ValueError, match="concurrency 2: need at least 2"):
        fit_slowdown({1: samples[1], 2: [1.0]})
