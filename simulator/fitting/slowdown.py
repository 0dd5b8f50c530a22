"""Concurrency slowdown: how much longer a kernel takes when k copies share the device.

f(k) = mean time at concurrency k / mean time alone (k = 1), with a bootstrap percentile
interval that resamples each level's times independently (seeded).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from simulator.fitting._bootstrap import bootstrap_statistic, percentile_interval
from simulator.fitting._validation import check_count, check_probability

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class Slowdown:
    """f(k) with its interval for each measured concurrency k (f(1) = 1)."""

    concurrency: tuple[int, ...]
    factor: tuple[float, ...]
    ci_low: tuple[float, ...]
    ci_high: tuple[float, ...]
    confidence: float
    resamples: int

    def factor_at(self, concurrency: int) -> float:
        """f(k) for a measured k; ValueError (naming the measured levels) otherwise."""
        if concurrency not in self.concurrency:
            raise ValueError(f"concurrency {concurrency!r} was not measured; measured: {list(self.concurrency)}")
        return self.factor[self.concurrency.index(concurrency)]

    def to_frame(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame(
            {"concurrency": self.concurrency, "factor": self.factor, "ci_low": self.ci_low, "ci_high": self.ci_high}
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "concurrency": list(self.concurrency),
            "factor": list(self.factor),
            "ci_low": list(self.ci_low),
            "ci_high": list(self.ci_high),
            "confidence": self.confidence,
            "resamples": self.resamples,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Slowdown:
        missing = [
            key for key in ("concurrency", "factor", "ci_low", "ci_high", "confidence", "resamples") if key not in data
        ]
        if missing:
            raise ValueError(f"slowdown dict is missing {missing}")
        lengths = {len(data[key]) for key in ("concurrency", "factor", "ci_low", "ci_high")}
        if len(lengths) != 1:
            raise ValueError("slowdown dict: concurrency, factor, ci_low and ci_high must have the same length")
        return cls(
            tuple(int(k) for k in data["concurrency"]),
            tuple(map(float, data["factor"])),
            tuple(map(float, data["ci_low"])),
            tuple(map(float, data["ci_high"])),
            float(data["confidence"]),
            int(data["resamples"]),
        )


def _times(samples: ArrayLike, concurrency: int) -> np.ndarray:
    times = np.asarray(samples, dtype=float).ravel()
    if times.size < 2 or not np.all(np.isfinite(times)) or np.any(times <= 0):
        raise ValueError(f"concurrency {concurrency}: need at least 2 finite times > 0 ms, got {times.size} value(s)")
    return times


def fit_slowdown(
    samples_by_concurrency: Mapping[int, ArrayLike], resamples: int = 1000, confidence: float = 0.95, seed: int = 0
) -> Slowdown:
    """f(k) = mean(k) / mean(1) with bootstrap intervals, from times measured at each concurrency k."""
    if not isinstance(samples_by_concurrency, Mapping) or 1 not in samples_by_concurrency:
        raise ValueError("samples_by_concurrency must map concurrency levels to times and include 1 (alone)")
    for level in samples_by_concurrency:
        if isinstance(level, bool) or not isinstance(level, (int, np.integer)) or level < 1:
            raise ValueError(f"concurrency levels must be integers ≥ 1, got {level!r}")
    resamples = check_count(resamples, "resamples", 10)
    check_probability(confidence, "confidence")
    rng = np.random.default_rng(seed)
    levels = sorted(samples_by_concurrency)
    means = {
        k: bootstrap_statistic(_times(samples_by_concurrency[k], k), lambda b: b.mean(axis=1), resamples, rng)
        for k in levels
    }
    alone = _times(samples_by_concurrency[1], 1).mean()
    factors, lows, highs = [], [], []
    for k in levels:
        factors.append(float(_times(samples_by_concurrency[k], k).mean() / alone))
        low, high = percentile_interval(means[k] / means[1], confidence)
        lows.append(float(low))
        highs.append(float(high))
    return Slowdown(tuple(int(k) for k in levels), tuple(factors), tuple(lows), tuple(highs), confidence, resamples)


def fit_slowdown_by_batch(
    samples: Mapping[int, Mapping[int, ArrayLike]], resamples: int = 1000, confidence: float = 0.95, seed: int = 0
) -> dict[int, Slowdown]:
    """:func:`fit_slowdown` for each batch size: ``samples[batch_size][concurrency]`` → times."""
    if not isinstance(samples, Mapping) or not samples:
        raise ValueError("samples must map batch sizes to {concurrency: times} mappings")
    return {
        int(batch): fit_slowdown(by_k, resamples, confidence, seed + index)
        for index, (batch, by_k) in enumerate(sorted(samples.items()))
    }
