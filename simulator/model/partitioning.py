"""Partitioning schemes: which partition owns a request's key (every node spec exists once per partition)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np
from pydantic import BaseModel

from simulator.hashing import key_hash, key_hashes
from simulator.registry import PARTITIONERS
from simulator.scenario.cluster import HashPartitioning, RangePartitioning


class Partitioner(ABC):
    """Maps integer keys in [0, catalog_size) to partitions 0 .. partitions − 1."""

    Config: ClassVar[type[BaseModel]]

    def __init__(self, config: BaseModel, catalog_size: int) -> None:
        self.config = config
        self.partitions = config.partitions
        self.catalog_size = catalog_size

    @abstractmethod
    def __call__(self, key: int) -> int:
        """The partition that owns ``key``."""

    @abstractmethod
    def owners(self, keys: np.ndarray) -> np.ndarray:
        """The owning partition of every key of an int64 array."""

    def shares(self, key_probabilities: np.ndarray) -> np.ndarray:
        """Fraction of requests each partition receives under a key popularity (key i at index i)."""
        owners = self.owners(np.arange(len(key_probabilities), dtype=np.int64))
        return np.bincount(owners, weights=key_probabilities, minlength=self.partitions)


@PARTITIONERS.register
class HashPartitioner(Partitioner):
    """By hash of the key: hot neighbouring keys land on different partitions."""

    Config = HashPartitioning

    def __call__(self, key):
        return key_hash(key) % self.partitions

    def owners(self, keys):
        return key_hashes(keys) % self.partitions


@PARTITIONERS.register
class RangePartitioner(Partitioner):
    """By contiguous key range: partition p owns keys [p·N/P, (p+1)·N/P)."""

    Config = RangePartitioning

    def __call__(self, key):
        return min(key * self.partitions // self.catalog_size, self.partitions - 1)

    def owners(self, keys):
        return np.minimum(keys * self.partitions // self.catalog_size, self.partitions - 1)
