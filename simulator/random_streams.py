"""Reproducible random streams: one independent stream per (replication, purpose).

Streams are derived from the scenario seed with numpy's SeedSequence, keyed by a stable hash
of the purpose's name, so adding a feature never reshuffles the draws of another one (and the
planner gets common random numbers across configurations).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from itertools import chain, islice, repeat

import numpy as np

from simulator.hashing import purpose_key

DRAW_BLOCK_SIZE = 4096


def stream(seed: int, replication: int, purpose: str) -> np.random.Generator:
    """The generator for one purpose ("arrivals", "service/node-0/class-1", ...) of a replication."""
    key = (replication, purpose_key(purpose))
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=key)))


class Draws(chain):
    """An endless iterator over values drawn in bulk blocks: ``next()`` on it is a C-level call, and
    ``take`` reads the same values as arrays instead (one way or the other, never both: they share
    the generator)."""

    blocks: _Blocks

    def take(self, count: int) -> np.ndarray:
        """The next ``count`` values as an array: exactly what ``count`` calls of ``next()`` would give."""
        return self.blocks.take(count)


class _Blocks:
    """The blocks behind a ``Draws``, handed out as lists (to ``next()``) or as array slices (to ``take``)."""

    def __init__(self, draw_block: Callable[[int], np.ndarray], block_size: int) -> None:
        self.draw_block = draw_block
        self.block_size = block_size
        self.mode: str | None = None
        self._block = np.zeros(0)
        self._position = 0

    def _enter(self, mode: str) -> None:
        if self.mode not in (None, mode):
            raise RuntimeError("a Draws iterator is read either one value at a time or as arrays, not both")
        self.mode = mode

    def as_list(self, _: object) -> list:
        self._enter("values")
        return self.draw_block(self.block_size).tolist()

    def take(self, count: int) -> np.ndarray:
        self._enter("arrays")
        parts = []
        while count > 0:
            if self._position == len(self._block):
                self._block = np.asarray(self.draw_block(self.block_size))  # the sizes ``next()`` draws in
                self._position = 0
            part = self._block[self._position : self._position + count]
            self._position += len(part)
            count -= len(part)
            parts.append(part)
        return parts[0] if len(parts) == 1 else np.concatenate(parts) if parts else np.zeros(0)


def draws(draw_block: Callable[[int], np.ndarray], block_size: int = DRAW_BLOCK_SIZE) -> Draws:
    """Endless values drawn ``block_size`` at a time by ``draw_block``, one by one or as arrays (``Draws``).

    numpy costs ~1 µs per scalar draw; drawing blocks and iterating them costs ~50 ns a value.
    A model's draws need not be the same in other block sizes, so ``take`` draws in the same sizes.
    """
    blocks = _Blocks(draw_block, block_size)
    iterator = Draws.from_iterable(map(blocks.as_list, repeat(None)))
    iterator.blocks = blocks
    return iterator


def constant(value: float | int) -> Draws:
    """The same value forever, as ``Draws`` (so that array readers take it in blocks, too)."""
    return draws(lambda size: np.full(size, value))


def take(values: Iterator, count: int, dtype: type = np.float64) -> np.ndarray:
    """The next ``count`` values of an iterator as an array (fewer where it ends): in blocks from ``Draws``,
    else one at a time."""
    if isinstance(values, Draws):
        return values.take(count).astype(dtype, copy=False)
    return np.fromiter(islice(values, count), dtype)
