"""Random draws of service-like times (service, copies, loads), one stream per purpose and size.

**Common random numbers.** A request's service time at each node spec is drawn when it arrives,
from a stream keyed by the spec and the request's class (``RequirementDraws``): the j-th request
of a class needs the same time however many replicas there are, whichever one serves it and
whatever the router, discipline, batcher or cache do. Comparing two configurations thus compares
like with like (the planner relies on it). Two kinds of draw cannot be made at arrival and are
made at the node instead: service models whose order matters (``ServiceTimeModel.ordered``: a
replayed service process), drawn in service order from a stream of the node; and calls of
several requests (a batch of b > 1), drawn from a stream of the spec, the model and b.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import partial
from itertools import repeat

import numpy as np

from simulator.random_streams import DRAW_BLOCK_SIZE, draws, stream
from simulator.service.base import ServiceTimeModel


class SizedDraws:
    """Times from one model for calls of any batch size, from streams ``<purpose>`` and ``<purpose>/batch-<b>``."""

    def __init__(self, model: ServiceTimeModel, purpose: str, seed: int, replication: int) -> None:
        self.model = model
        self.purpose = purpose
        self.seed = seed
        self.replication = replication
        self._sized: dict[int, Iterator[float]] = {}

    def _stream(self, batch_size: int) -> Iterator[float]:
        purpose = self.purpose if batch_size == 1 else f"{self.purpose}/batch-{batch_size}"
        rng = stream(self.seed, self.replication, purpose)
        model = self.model
        return draws(lambda size: model.draw_block(rng, size, batch_size))

    def __call__(self, batch_size: int = 1) -> float:
        if batch_size not in self._sized:
            self._sized[batch_size] = self._stream(batch_size)
        return next(self._sized[batch_size])


class BlockReader:
    """The values ``draws`` would give one by one from a model and a generator, taken as arrays.

    Blocks are drawn in the same sizes as ``draws`` draws them (a model's draws need not be the
    same in other block sizes), so ``take`` returns exactly what ``next`` on that iterator would.
    """

    def __init__(self, model: ServiceTimeModel, rng: np.random.Generator) -> None:
        self.model = model
        self.rng = rng
        self._block = np.zeros(0)
        self._position = 0

    def take(self, count: int) -> np.ndarray:
        parts = []
        while count:
            if self._position == len(self._block):
                self._block = np.asarray(self.model.draw_block(self.rng, DRAW_BLOCK_SIZE, 1), np.float64)
                self._position = 0
            part = self._block[self._position : self._position + count]
            self._position += len(part)
            count -= len(part)
            parts.append(part)
        return np.concatenate(parts) if parts else np.zeros(0)


class RequirementDraws:
    """Per class, a tuple of the request's single-call service time at every node spec (None: drawn at the node).

    One replication takes them one arrival at a time (``__call__``, the SimPy model) or in bulk
    (``block``, the fast engine): the same values either way, from streams ``requirement/<spec>/<class>``.
    """

    def __init__(
        self,
        models: Sequence[Sequence[ServiceTimeModel]],
        spec_names: Sequence[str],
        class_names: Sequence[str],
        seed: int,
        replication: int,
    ) -> None:
        sources = [
            [
                None if spec_models[k].ordered else (spec_models[k], stream(seed, replication, f"requirement/{spec}/{name}"))
                for spec, spec_models in zip(spec_names, models)
            ]
            for k, name in enumerate(class_names)
        ]
        self.specs = len(spec_names)
        self._iterators = [
            tuple(repeat(None) if source is None else draws(partial(source[0].draw_block, source[1])) for source in row)
            for row in sources
        ]
        self._readers = [[None if source is None else BlockReader(*source) for source in row] for row in sources]

    def __call__(self, class_index: int) -> tuple[float | None, ...]:
        return tuple(map(next, self._iterators[class_index]))

    def block(self, class_indices: np.ndarray) -> np.ndarray:
        """``[arrival, spec]``: what ``__call__`` would give successive arrivals of these classes (models drawn at
        arrival only)."""
        block = np.empty((len(class_indices), self.specs))
        for class_index, readers in enumerate(self._readers):
            rows = np.flatnonzero(class_indices == class_index) if len(self._readers) > 1 else slice(None)
            count = len(class_indices) if isinstance(rows, slice) else len(rows)
            for spec, reader in enumerate(readers):
                if count:
                    block[rows, spec] = reader.take(count)
        return block


class NodeServiceDraws:
    """What a node draws itself: ordered models' times in service order, and batch times (shared by the spec).
    Classes served by one model share its ordered sequence, as they share the machine whose process it is."""

    def __init__(
        self,
        models: Sequence[ServiceTimeModel],
        class_names: Sequence[str],
        node_name: str,
        batch_draws: Sequence[SizedDraws],
        seed: int,
        replication: int,
    ) -> None:
        sequences: dict[int, Iterator[float]] = {}  # id(model) → its sequence, named after its first class
        for model, name in zip(models, class_names):
            if model.ordered and id(model) not in sequences:
                sequences[id(model)] = SizedDraws(model, f"service/{node_name}/{name}", seed, replication)._stream(1)
        self.single: list[Iterator[float] | None] = [sequences.get(id(model)) for model in models]
        self.batch_draws = list(batch_draws)

    def batch(self, class_index: int, batch_size: int) -> float:
        """The time of one call of ``batch_size`` requests of the class's model."""
        return self.batch_draws[class_index](batch_size)
