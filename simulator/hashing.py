"""The hashes latsim uses, each defined once: stable names for random streams, keys for partitions."""

from __future__ import annotations

import hashlib

import numpy as np

_MASK_64 = (1 << 64) - 1
_GOLDEN_64 = 0x9E3779B97F4A7C15  # splitmix64's increment
_MIX_1, _MIX_2 = 0xBF58476D1CE4E5B9, 0x94D049BB133111EB


def purpose_key(purpose: str) -> int:
    """A stable 64-bit integer for a random stream's purpose: the first 8 bytes of its BLAKE2b digest.

    A cryptographic hash, so that no two purposes of a run (a node, a class, a batch size ...)
    collide in practice and similar names give unrelated streams; the same on every machine.
    """
    return int.from_bytes(hashlib.blake2b(purpose.encode("utf-8"), digest_size=8).digest(), "little")


def key_hash(key: int) -> int:
    """SplitMix64's finalizer of a request key: every input bit changes every output bit with probability ½.

    Partitions use ``key_hash(key) % partitions``, so keys spread evenly over any partition count
    (a multiplicative hash leaves low bits correlated with the key's low bits). ``key_hashes`` is
    the same function on arrays.
    """
    z = (key + _GOLDEN_64) & _MASK_64
    z = ((z ^ (z >> 30)) * _MIX_1) & _MASK_64
    z = ((z ^ (z >> 27)) * _MIX_2) & _MASK_64
    return z ^ (z >> 31)


def key_hashes(keys: np.ndarray) -> np.ndarray:
    """``key_hash`` of every key of an integer array (uint64 arithmetic wraps modulo 2⁶⁴, as the scalar form masks)."""
    z = keys.astype(np.uint64) + np.uint64(_GOLDEN_64)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(_MIX_1)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(_MIX_2)
    return z ^ (z >> np.uint64(31))
