"""The hashes latsim uses, each defined once: stable names for random streams, keys for partitions."""

from __future__ import annotations

import zlib

import numpy as np

KNUTH_MULTIPLIER = 2654435761  # golden-ratio multiplicative hash: neighbouring keys land far apart
_LOW_32_BITS = 0xFFFFFFFF


def purpose_key(purpose: str) -> int:
    """A stable integer for a random stream's purpose (the same on every machine and Python run)."""
    return zlib.crc32(purpose.encode())


def key_hash(key: int) -> int:
    """The hash of one request key that partitions spread over; ``key_hashes`` is its vector form."""
    return (key * KNUTH_MULTIPLIER) & _LOW_32_BITS


def key_hashes(keys: np.ndarray) -> np.ndarray:
    """``key_hash`` of every key of an int64 array."""
    return (keys.astype(np.int64) * KNUTH_MULTIPLIER) & _LOW_32_BITS
