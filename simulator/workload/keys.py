"""Request-key popularity: which cacheable key (an int in [0, catalog_size)) each request asks for.

A model is built from its config; ``keys(rng)`` is an endless iterator of keys drawn in numpy
blocks, and ``probabilities()`` the popularity vector (key i at index i) for partition shares and
analytic checks.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from itertools import cycle
from pathlib import Path
from typing import ClassVar

import numpy as np
from pydantic import BaseModel

from simulator.analytic import zipf_popularity
from simulator.errors import ScenarioError
from simulator.random_streams import draws
from simulator.registry import KEY_POPULARITY
from simulator.scenario.bounds import MAX_CATALOG
from simulator.scenario.workload import TraceKeys, UniformKeys, ZipfKeys



class KeyPopularity(ABC):
    """How often each key is requested; keys are ints in [0, ``catalog_size``)."""

    Config: ClassVar[type[BaseModel]]

    def __init__(self, config: BaseModel, base_dir: Path) -> None:
        self.config = config

    @property
    @abstractmethod
    def catalog_size(self) -> int:
        """One more than the largest key (for range partitioning)."""

    @abstractmethod
    def keys(self, rng: np.random.Generator) -> Iterator[int]:
        """The endless sequence of requested keys."""

    @abstractmethod
    def probabilities(self) -> np.ndarray:
        """P(key = i) at index i (a trace: its keys' frequencies), for partition shares and cache theory."""


@KEY_POPULARITY.register
class Zipf(KeyPopularity):
    """Finite Zipf: key i (rank i + 1) has probability ∝ (i + 1)^(−exponent); 0 is uniform.

    Sampled by inverse CDF (``searchsorted`` of uniforms in the cumulative probabilities);
    memory is O(catalog_size).
    """

    Config = ZipfKeys

    def __init__(self, config, base_dir):
        super().__init__(config, base_dir)
        self._probabilities = zipf_popularity(config.catalog_size, config.exponent)
        self._cumulative = np.cumsum(self._probabilities)
        self._cumulative[-1] = 1.0  # uniforms in [0, 1) then always land on a key

    @property
    def catalog_size(self):
        return self.config.catalog_size

    def keys(self, rng):
        cumulative = self._cumulative
        return draws(lambda size: np.searchsorted(cumulative, rng.random(size), side="right"))

    def probabilities(self):
        return self._probabilities


@KEY_POPULARITY.register
class Uniform(KeyPopularity):
    """Every key equally likely (no locality: the worst case for a cache)."""

    Config = UniformKeys

    @property
    def catalog_size(self):
        return self.config.catalog_size

    def keys(self, rng):
        catalog_size = self.config.catalog_size
        return draws(lambda size: rng.integers(0, catalog_size, size))

    def probabilities(self):
        return np.full(self.config.catalog_size, 1.0 / self.config.catalog_size)


@KEY_POPULARITY.register
class Trace(KeyPopularity):
    """Replays recorded keys (non-negative integers) from a CSV/parquet column in order, cycling."""

    Config = TraceKeys

    def __init__(self, config, base_dir):
        super().__init__(config, base_dir)
        path = base_dir / config.file
        from simulator.formats.samples import read_sample_column, require_within  # pandas: only for a key trace

        values = require_within(read_sample_column(path, config.column, "keys.trace"), 0, MAX_CATALOG - 1, path, config.column, "keys.trace")
        if np.any(values != np.floor(values)):
            raise ScenarioError(
                f"keys.trace: {path} must hold integer keys (below {MAX_CATALOG:,}); "
                "renumber hashed or string keys to 0, 1, 2, ... first"
            )
        self._keys = values.astype(np.int64).tolist()

    @property
    def catalog_size(self):
        return max(self._keys) + 1

    def keys(self, rng):
        return cycle(self._keys)

    def probabilities(self):
        return np.bincount(self._keys) / len(self._keys)
