"""Service-time draws of one node: one random stream per (class, batch size).

Batch size 1 uses the same stream an unbatched node uses, so a batcher that never batches
reproduces the unbatched run exactly (same seed, same numbers).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from simulator.random_streams import draws, stream
from simulator.service.base import ServiceTimeModel


class ServiceDraws:
    """``single[class]`` iterates batch-of-one times; ``__call__(class, size)`` draws any size."""

    def __init__(
        self, models: Sequence[ServiceTimeModel], class_names: Sequence[str], node_name: str, seed: int, replication: int
    ) -> None:
        self.models = list(models)
        self.purposes = [f"service/{node_name}/{name}" for name in class_names]
        self.seed = seed
        self.replication = replication
        self.single: list[Iterator[float]] = [self._stream(index, 1) for index in range(len(self.models))]
        self._batched: dict[tuple[int, int], Iterator[float]] = {}

    def _stream(self, class_index: int, batch_size: int) -> Iterator[float]:
        purpose = self.purposes[class_index] + ("" if batch_size == 1 else f"/batch-{batch_size}")
        rng = stream(self.seed, self.replication, purpose)
        model = self.models[class_index]
        return draws(lambda size: model.draw_block(rng, size, batch_size))

    def __call__(self, class_index: int, batch_size: int) -> float:
        if batch_size == 1:
            return next(self.single[class_index])
        key = (class_index, batch_size)
        if key not in self._batched:
            self._batched[key] = self._stream(class_index, batch_size)
        return next(self._batched[key])
