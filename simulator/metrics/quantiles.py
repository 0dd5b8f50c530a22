"""Quantiles of a stream: exact while it is small, a REQ sketch once it is long.

The sketch is Apache DataSketches' relative-error quantiles sketch in high-rank-accuracy mode,
whose rank error shrinks towards the top ranks, so p99 and p99.9 stay accurate in bounded memory.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from datasketches import req_floats_sketch

EXACT_LIMIT = 2_000_000
SKETCH_K = 50


class StreamingQuantiles:
    """Collects values in numpy chunks; folds them into a sketch past ``exact_limit`` values."""

    def __init__(self, exact_limit: int = EXACT_LIMIT) -> None:
        self.exact_limit = exact_limit
        self._chunks: list[np.ndarray] = []
        self._sketch: req_floats_sketch | None = None
        self.count = 0
        self.max = float("nan")

    @property
    def exact(self) -> bool:
        return self._sketch is None

    def extend(self, values: np.ndarray) -> None:
        if len(values) == 0:
            return
        self.count += len(values)
        chunk_max = float(values.max())
        self.max = chunk_max if not self.max >= chunk_max else self.max
        if self._sketch is not None:
            self._sketch.update(values.astype(np.float32))
            return
        self._chunks.append(values)
        if self.count > self.exact_limit:
            self._sketch = req_floats_sketch(SKETCH_K, True)
            for chunk in self._chunks:
                self._sketch.update(chunk.astype(np.float32))
            self._chunks = []

    def quantiles(self, probabilities: Sequence[float]) -> list[float]:
        if self.count == 0:
            return [float("nan")] * len(probabilities)
        if self._sketch is not None:
            return [float(self._sketch.get_quantile(p)) for p in probabilities]
        values = np.concatenate(self._chunks)
        return [float(q) for q in np.quantile(values, probabilities)]
