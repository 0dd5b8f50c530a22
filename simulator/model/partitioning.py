"""Which partition owns a request's key: by hash (spreads hot keys) or by key range."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, PositiveInt

KNUTH_MULTIPLIER = 2654435761  # golden-ratio multiplicative hash: neighbouring keys land far apart


class PartitioningSpec(BaseModel):
    """Data split over ``partitions``; every node spec is instantiated once per partition."""

    model_config = ConfigDict(extra="forbid")
    scheme: Literal["hash", "range"] = Field("hash", description="hash: spread keys; range: contiguous key ranges")
    partitions: PositiveInt = 1


class Partitioner:
    """Maps integer keys in [0, catalog_size) to partitions."""

    def __init__(self, spec: PartitioningSpec, catalog_size: int) -> None:
        self.scheme = spec.scheme
        self.partitions = spec.partitions
        self.catalog_size = catalog_size

    def __call__(self, key: int) -> int:
        if self.scheme == "hash":
            return ((key * KNUTH_MULTIPLIER) & 0xFFFFFFFF) % self.partitions
        return min(key * self.partitions // self.catalog_size, self.partitions - 1)

    def shares(self, key_probabilities: np.ndarray) -> np.ndarray:
        """Fraction of requests each partition receives under a key popularity."""
        keys = np.arange(len(key_probabilities), dtype=np.int64)
        if self.scheme == "hash":
            owners = ((keys * KNUTH_MULTIPLIER) & 0xFFFFFFFF) % self.partitions
        else:
            owners = np.minimum(keys * self.partitions // self.catalog_size, self.partitions - 1)
        return np.bincount(owners, weights=key_probabilities, minlength=self.partitions)
