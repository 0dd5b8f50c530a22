"""Confidence intervals from independent estimates (replications or batch means), Student t."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def t_interval(values: Sequence[float], level: float) -> tuple[float, float | None, float | None]:
    """Mean of independent estimates and its two-sided t confidence interval (None if < 2 values)."""
    finite = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if len(finite) == 0:
        return float("nan"), None, None
    mean = float(finite.mean())
    if len(finite) < 2:
        return mean, None, None
    from scipy.special import (
        stdtrit,  # the Student t quantile, without importing scipy.stats
    )

    half_width = float(stdtrit(len(finite) - 1, 0.5 + level / 2) * finite.std(ddof=1) / math.sqrt(len(finite)))
    return mean, mean - half_width, mean + half_width
