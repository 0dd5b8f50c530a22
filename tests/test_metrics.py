"""Streaming quantiles stay accurate past the exact limit; the estimators behave as their theory says."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats

from simulator.metrics.estimators import clopper_pearson, mser_truncation, quantile_intervals, ratio_interval
from simulator.metrics.quantiles import StreamingQuantiles

PROBABILITIES = [0.5, 0.9, 0.99, 0.999]


def test_exact_below_the_limit():
    values = np.random.default_rng(1).exponential(3.0, 10_000)
    quantiles = StreamingQuantiles(exact_limit=20_000)
    for chunk in np.array_split(values, 7):
        quantiles.extend(chunk)
    assert quantiles.exact and quantiles.count == 10_000 and quantiles.max == values.max()
    assert quantiles.quantiles(PROBABILITIES) == pytest.approx(np.quantile(values, PROBABILITIES))


def test_sketch_tail_accuracy_past_the_limit():
    values = np.random.default_rng(2).lognormal(2.0, 0.8, 3_000_000)
    quantiles = StreamingQuantiles(exact_limit=500_000)
    for chunk in np.array_split(values, 46):
        quantiles.extend(chunk)
    assert not quantiles.exact
    exact = np.quantile(values, PROBABILITIES)
    estimated = np.array(quantiles.quantiles(PROBABILITIES))
    # Rank error of the REQ sketch (k=50, high-rank accuracy) translated into value error:
    # well under 1% at p99/p99.9 and under 2% at the median for this distribution.
    assert np.abs(estimated / exact - 1)[2:].max() < 0.01
    assert np.abs(estimated / exact - 1)[:2].max() < 0.02
    assert quantiles.max == values.max()


def test_ratio_interval_covers_at_nominal_rate_and_contains_its_estimate():
    """Per-unit sums of a ratio with random denominators: the pooled ratio's 90 % interval covers the truth."""
    rng = np.random.default_rng(3)
    covered = 0
    for _ in range(4000):
        denominators = rng.poisson(50, 8).astype(float)
        numerators = np.array([rng.exponential(2.0, int(d)).sum() for d in denominators])
        estimate, low, high = ratio_interval(numerators, denominators, 0.9)
        assert low <= estimate <= high and low > 0
        covered += low <= 2.0 <= high
    # 4000 Bernoulli(0.9) trials: 99.9 % of the time within ±3.3 standard deviations (±0.0156)
    assert abs(covered / 4000 - 0.9) < 3.3 * np.sqrt(0.9 * 0.1 / 4000)


def test_proportion_intervals_stay_inside_zero_and_one():
    estimate, low, high = ratio_interval([9.0, 10.0, 10.0], [10.0, 10.0, 10.0], 0.99, proportion=True)
    assert estimate == pytest.approx(29 / 30) and 0 < low <= estimate <= high < 1
    assert ratio_interval([1.0], [2.0], 0.95) == (0.5, None, None)
    assert ratio_interval([10.0, 10.0], [10.0, 10.0], 0.95, proportion=True) == (1.0, 1.0, 1.0)


def test_clopper_pearson_bounds():
    lower, upper = clopper_pearson(0, 8000, 0.95)
    assert lower == 0.0 and upper == pytest.approx(1 - 0.05 ** (1 / 8000))
    lower, upper = clopper_pearson(5, 100, 0.95)
    assert scipy.stats.binom.sf(4, 100, lower) == pytest.approx(0.05) and scipy.stats.binom.cdf(5, 100, upper) == pytest.approx(0.05)


def test_quantile_intervals_pool_the_sections():
    rng = np.random.default_rng(4)
    pooled = rng.exponential(1.0, 20_000)
    sections = np.repeat(np.arange(10), 2000)
    (estimate, low, high), = quantile_intervals(pooled, sections, [0] * 10, [0.99], 0.95)
    assert estimate == pytest.approx(np.quantile(pooled, 0.99)) and low < estimate < high
    assert low < -np.log(0.01) < high
    (with_drops, _, _), = quantile_intervals(pooled, sections, [40] * 10, [0.99], 0.95)
    assert with_drops == float("inf")  # 2 % of every section dropped: the p99 of latency-or-drop is a drop


def test_mser_finds_a_start_up_transient():
    rng = np.random.default_rng(5)
    series = np.concatenate([np.linspace(0.2, 1.0, 100), np.ones(900)]) + rng.normal(0, 0.05, 1000)
    truncation = mser_truncation(series, np.ones(1000))
    assert 60 <= truncation <= 140


def test_quantile_intervals_count_each_section_at_the_pooled_estimate_ties_included():
    """The one-pass section counts equal sorting each section and counting its values at or below the estimate."""
    rng = np.random.default_rng(12)
    values = np.round(rng.exponential(3.0, 5000))  # many ties, some exactly at the estimates
    sections = rng.integers(0, 7, len(values))
    extras = [0, 3, 0, 1, 0, 0, 2]
    probabilities = [0.5, 0.9, 0.99]
    results = quantile_intervals(values, sections, extras, probabilities, 0.9)
    pooled = np.sort(values)
    total = len(values) + sum(extras)
    sizes = [float(np.sum(sections == s) + extras[s]) for s in range(7)]
    for (estimate, low, high), probability in zip(results, probabilities):
        position = probability * total / len(values) * (len(values) - 1)
        assert estimate == pooled[int(position)] + (position - int(position)) * (pooled[int(position) + 1] - pooled[int(position)])
        below = [float(np.searchsorted(np.sort(values[sections == s]), estimate, side="right")) for s in range(7)]
        _, fraction_low, fraction_high = ratio_interval(below, sizes, 0.9)
        assert low <= estimate <= high
        def pooled_quantile(fraction: float) -> float:
            return float(np.quantile(values, min(max(fraction, 0.0) * total / len(values), 1.0)))

        assert low == pytest.approx(min(pooled_quantile(fraction_low), estimate))
        assert high == pytest.approx(max(pooled_quantile(fraction_high), estimate))


@pytest.mark.parametrize("in_order", [True, False])
def test_rows_grouped_by_batch_give_the_same_counts_sums_and_extremes_in_or_out_of_order(in_order):
    """Rows in batch order are reduced one run at a time, others bin by bin: both must give what a
    plain loop over the batches gives (counts, sizes and extremes exactly; sums up to rounding)."""
    from simulator.metrics.collector import _Grouped

    rng = np.random.default_rng(3)
    batches = 12
    batch = np.sort(rng.integers(1, batches - 1, 5000))  # batches 0 and 11 stay empty
    if not in_order:
        batch = rng.permutation(batch)
    values = rng.exponential(10.0, len(batch))
    masks = [rng.random(len(batch)) < share for share in (0.0, 0.3, 1.0)]
    grouped = _Grouped(batch, batches)
    assert (grouped.starts is not None) == in_order
    least, greatest = grouped.extremes(values)
    for b in range(batches):
        rows = batch == b
        assert [count[b] for count in grouped.counts(masks)] == [float((mask & rows).sum()) for mask in masks]
        assert grouped.sizes()[b] == rows.sum()
        assert grouped.sums(values)[b] == pytest.approx(values[rows].sum(), rel=1e-12, abs=0.0)
        assert least[b] == (values[rows].min() if rows.any() else np.inf)
        assert greatest[b] == (values[rows].max() if rows.any() else -np.inf)
    served = rng.random(len(batch)) < 0.5
    assert np.array_equal(grouped.subset(served).sizes(), np.bincount(batch[served], minlength=batches))
    assert grouped.subset(np.ones(len(batch), bool)) is grouped
