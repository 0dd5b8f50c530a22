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

from simulator.random_streams import draws, stream
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
        self._draws = [[None if source is None else draws(partial(source[0].draw_block, source[1])) for source in row] for row in sources]
        self._iterators = [tuple(repeat(None) if values is None else values for values in row) for row in self._draws]

    def __call__(self, class_index: int) -> tuple[float | None, ...]:
        return tuple(map(next, self._iterators[class_index]))

    def block(self, class_indices: np.ndarray) -> np.ndarray:
        """``[arrival, spec]``: what ``__call__`` would give successive arrivals of these classes (models drawn at
        arrival only)."""
        block = np.full((len(class_indices), self.specs), np.nan)
        for class_index, row in enumerate(self._draws):
            rows = np.flatnonzero(class_indices == class_index) if len(self._draws) > 1 else slice(None)
            count = len(class_indices) if isinstance(rows, slice) else len(rows)
            for spec, values in enumerate(row):
                if count and values is not None:
                    block[rows, spec] = values.take(count)
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
