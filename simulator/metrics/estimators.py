"""Point estimates and confidence intervals that mean what they say.

Every mean, proportion and rate is a ratio of sums (Σ latency / Σ served, Σ met / Σ finished,
Σ served / Σ seconds): its estimate is the pooled ratio over all units (replications, or batches
of one run), and its interval comes from the delta method around that very estimate (on the log
scale, or the logit scale for a proportion), so the estimate always lies inside its own interval
and the interval inside the quantity's range. Quantiles are positive: their interval is formed on
the log scale (it can never go below zero) and centred, in log space, on the estimate. A miss
probability gets Clopper–Pearson bounds on an *effective* number of requests: misses come in
bursts (busy periods), so n correlated requests weigh as n / τ independent ones, τ being the
variance inflation of the miss indicator, or of the latency when misses are too few to measure it.
With one run, batch means make the units: adjacent batches are merged until their lag-1
autocorrelation is small (Fishman's LBATCH idea), so that they are close to independent.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

MIN_BATCHES = 10  # fewer batches than this give too few degrees of freedom to trust
MAX_LAG1 = 0.1  # batch means whose lag-1 autocorrelation is above this are merged further
CORRELATION_TIMES = 5  # batches shorter than this many correlation times (variance inflations) are still correlated
MIN_MISS_BLOCKS = 10  # blocks holding a miss needed to measure how misses cluster (fewer: the latency's clustering stands in)


def t_quantile(degrees: int, probability: float) -> float:
    """Student t quantile (scipy.special, which imports far faster than scipy.stats)."""
    from scipy.special import stdtrit

    return float(stdtrit(degrees, probability))


def ratio_interval(
    numerators: Sequence[float], denominators: Sequence[float], level: float, proportion: bool = False
) -> tuple[float, float | None, float | None]:
    """Σ numerators / Σ denominators and its delta-method t interval over the units (two-sided).

    Var(R̂) ≈ Σ (N_i − R̂ D_i)² / ((n − 1) n D̄²). The interval is formed on the log scale (a
    proportion: the logit scale), so it stays within the quantity's range: never below 0, a
    proportion never above 1. Units with a zero denominator carry no information and are left out.
    (nan, None, None) when nothing was observed; no interval with under 2 units.
    """
    num = np.asarray(numerators, dtype=float)
    den = np.asarray(denominators, dtype=float)
    keep = np.isfinite(num) & np.isfinite(den) & (den > 0)
    num, den = num[keep], den[keep]
    if not len(num) or den.sum() <= 0:
        return float("nan"), None, None
    estimate = float(num.sum() / den.sum())
    units = len(num)
    if units < 2:
        return estimate, None, None
    residual = num - estimate * den
    standard_error = math.sqrt(float(np.sum(residual**2) / (units - 1) / units / den.mean() ** 2))
    quantile = t_quantile(units - 1, 0.5 + level / 2)
    if standard_error == 0 or estimate <= 0 or proportion and estimate >= 1:
        return estimate, estimate, estimate  # no variation seen (all units alike, or at a bound of the range)
    if proportion:
        spread = quantile * standard_error / (estimate * (1 - estimate))  # delta method on logit(p)
        logit = math.log(estimate / (1 - estimate))
        return estimate, 1 / (1 + math.exp(-(logit - spread))), 1 / (1 + math.exp(-(logit + spread)))
    spread = quantile * standard_error / estimate  # delta method on log(R)
    return estimate, estimate * math.exp(-spread), estimate * math.exp(spread)


def log_interval(values: Sequence[float], level: float) -> tuple[float, float | None, float | None]:
    """Per-unit estimates of a non-negative quantity (a quantile) → (estimate, interval) that never goes below 0.

    All positive: the geometric mean with a t interval on the log scale. Some zero (a wait quantile
    that many requests do not reach): the mean with a t interval whose lower end is clipped at 0.
    """
    finite = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if not len(finite):
        return float("nan"), None, None
    if np.all(finite > 0):
        return sectioned_log_interval(float(np.exp(np.log(finite).mean())), finite, level)
    estimate = float(finite.mean())
    if len(finite) < 2:
        return estimate, None, None
    half_width = t_quantile(len(finite) - 1, 0.5 + level / 2) * float(finite.std(ddof=1)) / math.sqrt(len(finite))
    return estimate, max(estimate - half_width, 0.0), estimate + half_width


def sectioned_log_interval(
    estimate: float, sections: Sequence[float], level: float
) -> tuple[float, float | None, float | None]:
    """An estimate from the whole run with a log-scale interval whose spread comes from its sections (batches,
    or replications); with a section at 0 the spread is taken on the plain scale and clipped at 0."""
    finite = np.asarray([v for v in sections if v is not None and math.isfinite(v)], dtype=float)
    if not math.isfinite(estimate) or len(finite) < 2:
        return estimate, None, None
    quantile = t_quantile(len(finite) - 1, 0.5 + level / 2) / math.sqrt(len(finite))
    if estimate > 0 and np.all(finite > 0):
        spread = quantile * float(np.log(finite).std(ddof=1))
        return estimate, estimate * math.exp(-spread), estimate * math.exp(spread)
    half_width = quantile * float(finite.std(ddof=1))
    return estimate, max(estimate - half_width, 0.0), estimate + half_width


def quantile_intervals(
    values: np.ndarray,
    sections: np.ndarray,
    extras: Sequence[int],
    probabilities: Sequence[float],
    level: float,
    min_batch: int | None = None,
    inflation: float = math.nan,
) -> list[tuple[float, float | None, float | None]]:
    """Quantiles of ``values`` pooled, ``sections[i]`` being the section of ``values[i]`` and ``extras[s]``
    more values of section s counting as +∞; each with an interval from the sections' spread on the
    probability scale.

    F̂_s(q̂), the fraction of section s at or below the pooled quantile q̂, is an average of
    indicators, so its ratio-of-sums interval over the sections is sound (where the spread of the
    sections' own quantiles, in a short or heavy-tailed run, is not); the interval's ends are mapped
    back through the pooled empirical quantile function, so it never leaves the observed range.
    ``min_batch`` (one run): the sections are consecutive fine batches, merged for each quantile into
    batches as ``batch_size_for`` chooses on its own indicator series, at least ``min_batch`` at a time,
    and the tail beyond the estimate is bounded like a miss probability (``miss_bounds``, with the run's
    latency ``inflation`` as the floor of its own): a tail seen in a few bursts is skewed, and a t
    interval would be narrowest when it is most wrong.
    One sort of the pooled values and one pass that counts each section's values under every
    estimate: no section is sorted or copied.
    """
    pooled = np.sort(values)
    finite = len(pooled)
    extras = np.asarray(extras, dtype=np.int64)
    total = finite + int(extras.sum())

    def quantile(probability: float) -> float:  # numpy's default (linear) quantile, on the sorted values
        position = min(probability * total / finite, 1.0) * (finite - 1)
        below = int(position)
        above = min(below + 1, finite - 1)
        return float(pooled[below] + (position - below) * (pooled[above] - pooled[below]))

    results: list[tuple[float, float | None, float | None]] = []
    estimates = {}  # index in probabilities → estimate, for those that get an interval
    for index, probability in enumerate(probabilities):
        if not finite or probability * total > finite:
            results.append((float("inf") if total else float("nan"), None, None))
            continue
        results.append((quantile(probability), None, None))
        if len(extras) >= 2:
            estimates[index] = results[-1][0]
    if not estimates:
        return results
    thresholds = np.array(sorted(set(estimates.values())))
    # values[i] ≤ thresholds[j] ⇔ it falls in a bin ≤ j: count per (section, bin), then add up the bins
    bins = np.zeros(len(values), np.min_scalar_type(len(thresholds)))  # how many thresholds lie below each value
    for threshold in thresholds:
        bins += values > threshold
    per_bin = np.bincount(sections * (len(thresholds) + 1) + bins, minlength=len(extras) * (len(thresholds) + 1))
    at_or_below = np.cumsum(per_bin.reshape(len(extras), -1), axis=1)
    sizes = (at_or_below[:, -1] + extras).astype(float).tolist()
    for index, estimate in estimates.items():
        below = at_or_below[:, int(np.searchsorted(thresholds, estimate))].astype(float)
        if min_batch is None:
            _, low, high = ratio_interval(below, sizes, level)
        else:  # the tail beyond the estimate as a rare proportion: Clopper–Pearson on its effective count
            counts = np.asarray(sizes)
            factor = max(min_batch, batch_size_for(below, counts)[0])
            above, counts = merge(counts - below, factor), merge(counts, factor)
            tail_low, tail_high, _ = miss_bounds(above, counts, inflation, 0.5 + level / 2)
            low, high = 1 - tail_high, 1 - tail_low
        if low is not None:
            results[index] = (estimate, min(quantile(max(low, 0.0)), estimate), max(quantile(min(high, 1.0)), estimate))
    return results


def lag1_autocorrelation(values: np.ndarray) -> float:
    """Sample lag-1 autocorrelation of a series (0 for a constant series)."""
    centred = values - values.mean()
    denominator = float(np.dot(centred, centred))
    return float(np.dot(centred[:-1], centred[1:]) / denominator) if denominator > 0 else 0.0


def batch_size_for(numerators: np.ndarray, denominators: np.ndarray) -> tuple[int, bool]:
    """How many fine batches to merge into one batch (a power of two), and whether the result is still correlated.

    Pairs are merged until the batch ratios' lag-1 autocorrelation is at most ``MAX_LAG1`` *and* the two
    finer levels, where there are more batches and so more power, agree: once batches are long against the
    correlation time their lag-1 halves with each doubling, so those levels must be within 2 and 4 × it.
    A level with few batches alone would pass by chance (its lag-1 has a standard error near 1/√batches).
    Merging stops at ``MIN_BATCHES`` to ``2 × MIN_BATCHES`` batches; still correlated there, it says so.
    """
    factor = 1
    num, den = np.asarray(numerators, dtype=float), np.asarray(denominators, dtype=float)
    finer: list[float] = []  # lag-1 at the finer levels, finest first
    while True:
        keep = den > 0
        ratios = num[keep] / den[keep]
        lag1 = lag1_autocorrelation(ratios) if len(ratios) >= 3 else math.inf
        allowed = [MAX_LAG1 * 2**step for step in range(len(finer[-2:]) + 1)]
        correlated = any(value > limit for value, limit in zip([lag1, *reversed(finer[-2:])], allowed))
        if not correlated or len(num) < 2 * MIN_BATCHES:
            return factor, correlated
        finer.append(lag1)
        num, den = merge_pairs(num), merge_pairs(den)
        factor *= 2


def run_too_short(numerators: np.ndarray, denominators: np.ndarray, unit_variance: float, factor: int) -> bool:
    """Whether a run cannot hold ``2 × MIN_BATCHES`` batches of ``CORRELATION_TIMES`` correlation times each, the
    correlation time being the series' variance inflation over batches of ``factor`` fine batches: a check with
    more power than the lag-1 of a few batches, which passes by chance when batches are few."""
    num, den = merge(numerators, factor), merge(denominators, factor)
    inflation = variance_inflation(num, den, unit_variance, None)
    return math.isfinite(inflation) and float(den.sum()) < 2 * MIN_BATCHES * CORRELATION_TIMES * inflation


def merge_pairs(values: np.ndarray) -> np.ndarray:
    """Sums of adjacent pairs (an odd last element is added to the last pair)."""
    pairs = len(values) // 2
    merged = values[: 2 * pairs].reshape(pairs, 2).sum(axis=1)
    if len(values) % 2 and pairs:
        merged[-1] += values[-1]
    return merged


def merge(values: np.ndarray, factor: int) -> np.ndarray:
    """``merge_pairs`` applied log2(factor) times."""
    values = np.asarray(values, dtype=float)
    while factor > 1:
        values, factor = merge_pairs(values), factor // 2
    return values


def clopper_pearson(events: float, trials: float, level: float) -> tuple[float, float]:
    """One-sided Clopper–Pearson bounds (lower, upper) at ``level`` on a binomial probability (counts may be
    effective, fractional ones: the beta quantiles are continuous in them)."""
    from scipy.special import betaincinv

    alpha = 1.0 - level
    lower = 0.0 if events == 0 else float(betaincinv(events, trials - events + 1, alpha))
    upper = 1.0 if events == trials else float(betaincinv(events + 1, trials - events, 1 - alpha))
    return lower, upper


def variance_inflation(
    numerators: np.ndarray, denominators: np.ndarray, unit_variance: float, level: float | None
) -> float:
    """How many correlated units weigh as one independent one: the variance of Σ numerators / Σ denominators over
    independent blocks, divided by that of as many independent units of variance ``unit_variance``, times
    (t/z)² at ``level`` (None: not) so that a normal bound on the effective count is as wide as the blocks' t
    bound. nan when unknown."""
    from scipy.special import ndtri

    num, den = np.asarray(numerators, dtype=float), np.asarray(denominators, dtype=float)
    keep = den > 0
    num, den = num[keep], den[keep]
    blocks = len(den)
    if blocks < 2 or not unit_variance > 0:
        return float("nan")
    units = float(den.sum())
    ratio = float(num.sum()) / units
    block_variance = float(np.sum((num - ratio * den) ** 2)) / (blocks - 1) / blocks / float(den.mean()) ** 2
    widening = 1.0 if level is None else (t_quantile(blocks - 1, level) / float(ndtri(level))) ** 2
    return block_variance / (unit_variance / units) * widening


def miss_bounds(
    misses: np.ndarray, finished: np.ndarray, latency_inflation: float, level: float
) -> tuple[float, float, float]:
    """One-sided bounds (lower, upper) at ``level`` on a miss probability from the misses and finished requests
    of close-to-independent blocks, and the effective number of requests the bounds rest on.

    Misses come in bursts, so n requests weigh as n / τ independent ones: τ is the variance inflation of
    the miss indicator over the blocks once ``MIN_MISS_BLOCKS`` blocks hold a miss, never below
    ``latency_inflation`` (the latency's: how long the system stays in one state, known with no miss
    at all), and never above the mean block size, where each block counts as one trial (a block holds a
    miss with a probability at least the miss probability, so its count bounds it). Clopper–Pearson on
    the effective counts then gives the bounds.
    """
    misses, finished = np.asarray(misses, dtype=float), np.asarray(finished, dtype=float)
    keep = finished > 0
    misses, finished = misses[keep], finished[keep]
    requests = float(finished.sum())
    if requests <= 0:
        return 0.0, 1.0, 0.0
    probability = float(misses.sum()) / requests
    inflation = latency_inflation if math.isfinite(latency_inflation) else float("inf")
    if np.count_nonzero(misses) >= MIN_MISS_BLOCKS and 0 < probability < 1:
        measured = variance_inflation(misses, finished, probability * (1 - probability), level)
        inflation = max(latency_inflation, measured) if math.isfinite(latency_inflation) else measured
    inflation = min(max(inflation, 1.0), requests / len(finished))
    effective = requests / inflation
    lower, upper = clopper_pearson(probability * effective, effective, level)
    return lower, upper, float(effective)


def mser_truncation(batch_means: np.ndarray, counts: np.ndarray) -> int:
    """MSER: the number of leading batches whose deletion minimises the standard error of what remains.

    White's marginal standard error rule (White 1997; with batch means of a few requests it is
    MSER-5, here the run's fine batches): d* = argmin_{d ≤ n/2} Σ_{i>d} (Y_i − Ȳ_d)² / (n − d)².
    Batches with no observation are skipped. Returns a batch index in ``range(len(batch_means))``.
    """
    valid = np.flatnonzero(counts > 0)
    if len(valid) < 4:
        return 0
    series = batch_means[valid]
    n = len(series)
    tail_sum = np.cumsum(series[::-1])[::-1]
    tail_square = np.cumsum((series**2)[::-1])[::-1]
    remaining = n - np.arange(n)
    squares = tail_square - tail_sum**2 / remaining
    statistic = squares / remaining**2
    best = int(np.argmin(statistic[: n // 2 + 1]))
    return int(valid[best])


TRANSIENT_T = 3.0  # how many standard errors a stretch must stand apart to count as a transient


def transient_end(numerators: np.ndarray, denominators: np.ndarray, floor: int) -> int:
    """Where the start-up transient of a ratio series (per fine batch) ends, at ``floor`` batches or later.

    A run starts empty and cold: queues empty (latencies low), caches empty (hit ratios low). MSER
    proposes a truncation point d (``mser_truncation``); past ``floor`` it is accepted only if the
    stretch [floor, d) lies *below* what follows d by more than ``TRANSIENT_T`` standard errors
    (from batch means of what follows). MSER alone, in heavy traffic, also deletes ordinary early
    excursions of high latency, which would bias every estimate low.
    """
    num, den = np.asarray(numerators, dtype=float), np.asarray(denominators, dtype=float)
    means = np.divide(num, den, out=np.zeros(len(num)), where=den > 0)
    proposed = mser_truncation(means, den)
    if proposed <= floor or den[proposed:].sum() <= 0 or den[floor:proposed].sum() <= 0:
        return floor
    rest_num, rest_den = num[proposed:], den[proposed:]
    factor, _ = batch_size_for(rest_num, rest_den)
    batch_num, batch_den = merge(rest_num, factor), merge(rest_den, factor)
    keep = batch_den > 0
    if keep.sum() < 2:
        return floor
    rest_mean = rest_num.sum() / rest_den.sum()
    batch_variance = float(np.var(batch_num[keep] / batch_den[keep], ddof=1))
    stretch = proposed - floor
    stretch_variance = batch_variance * factor / stretch  # a mean over ``stretch`` fine batches
    rest_variance = batch_variance / keep.sum()
    gap = num[floor:proposed].sum() / den[floor:proposed].sum() - rest_mean
    spread = math.sqrt(stretch_variance + rest_variance)
    return proposed if gap < 0 and (spread == 0 or -gap > TRANSIENT_T * spread) else floor
