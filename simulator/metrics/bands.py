"""Prediction bands: how far an estimate moves when its uncertain inputs move, several independent sources at once."""

from __future__ import annotations

import math


def combined_band(
    estimate: float | None, sources: list[list[float | None]], upper_bound: float | None = None
) -> tuple[float | None, float | None]:
    """The band of an estimate whose inputs are uncertain in several independent ways: each source's reach
    below and above the estimate (its variants' lowest and highest), added in quadrature, as independent
    errors add. The range of all variants would be the largest single source's reach: too narrow when the
    profile's stretch of the machine, the next run's and the profile's sampling all err at once. An unstable
    prediction (no estimate) has the range of its variants."""
    known = [[value for value in values if value is not None and math.isfinite(value)] for values in sources]
    everything = [value for values in known for value in values]
    if not everything:
        return None, None
    if estimate is None or not math.isfinite(estimate):
        return min(everything), max(everything)
    below = math.hypot(*(max(0.0, estimate - min(values)) for values in known if values))
    above = math.hypot(*(max(0.0, max(values) - estimate) for values in known if values))
    high = estimate + above
    return max(0.0, estimate - below), high if upper_bound is None else min(upper_bound, high)
