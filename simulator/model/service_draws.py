"""Random draws of service-like times (service, copies, loads), one stream per purpose and size.

Batch size 1 uses the stream an unbatched node uses, so a batcher that never batches
reproduces the unbatched run exactly (same seed, same numbers).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from simulator.random_streams import draws, stream
from simulator.service.base import ServiceTimeModel


class SizedDraws:
    """Times from one model for calls of any batch size; ``single`` iterates size-1 times."""

    def __init__(self, model: ServiceTimeModel, purpose: str, seed: int, replication: int) -> None:
        self.model = model
        self.purpose = purpose
        self.seed = seed
        self.replication = replication
        self.single: Iterator[float] = self._stream(1)
        self._sized: dict[int, Iterator[float]] = {}

    def _stream(self, batch_size: int) -> Iterator[float]:
        purpose = self.purpose if batch_size == 1 else f"{self.purpose}/batch-{batch_size}"
        rng = stream(self.seed, self.replication, purpose)
        model = self.model
        return draws(lambda size: model.draw_block(rng, size, batch_size))

    def __call__(self, batch_size: int = 1) -> float:
        if batch_size == 1:
            return next(self.single)
        if batch_size not in self._sized:
            self._sized[batch_size] = self._stream(batch_size)
        return next(self._sized[batch_size])


class ServiceDraws:
    """Service times of one node: ``single[class]`` for batches of one, ``(class, size)`` for any."""

    def __init__(
        self, models: Sequence[ServiceTimeModel], class_names: Sequence[str], node_name: str, seed: int, replication: int
    ) -> None:
        self.per_class = [
            SizedDraws(model, f"service/{node_name}/{name}", seed, replication) for model, name in zip(models, class_names)
        ]
        self.single = [draws_of_class.single for draws_of_class in self.per_class]

    def __call__(self, class_index: int, batch_size: int) -> float:
        return self.per_class[class_index](batch_size)
