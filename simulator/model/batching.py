"""Dynamic batchers: when a free worker should take waiting requests, and how many.

A batcher is asked by a node with a free worker and waiting requests; it answers *take n now*
or *hold until t* (the node then keeps the worker free and asks again at t, or sooner when
requests arrive). Which requests are taken is the node's queue discipline.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar, NamedTuple

from pydantic import BaseModel

from simulator.model.disciplines import QueueDiscipline
from simulator.registry import BATCHERS
from simulator.scenario.nodes import TritonBatching


class BatchDecision(NamedTuple):
    """``take`` > 0: start a batch of that many now; else hold the worker until ``hold_until_ms``."""

    take: int
    hold_until_ms: float = 0.0


class Batcher(ABC):
    """A batching policy; ``max_batch_size`` bounds every batch."""

    Config: ClassVar[type[BaseModel]]
    max_batch_size: int = 1

    def __init__(self, config: BaseModel) -> None:
        self.config = config

    @property
    def is_trivial(self) -> bool:
        """Batches of one, taken at once: exactly the unbatched node."""
        return self.max_batch_size == 1

    @abstractmethod
    def decide(self, queue: QueueDiscipline, waiting: int, now_ms: float) -> BatchDecision:
        """Take how many of the ``waiting`` requests now, or hold until when."""


@BATCHERS.register
class TritonBatcher(Batcher):
    """Full batches at once, else the largest preferred size waiting, else hold until the oldest
    waiting request has waited ``max_queue_delay_ms``, then take what is there (Triton's dynamic
    batcher, which measures the delay from the oldest request of the pending batch)."""

    Config = TritonBatching

    def __init__(self, config: TritonBatching) -> None:
        super().__init__(config)
        self.max_batch_size = config.max_batch_size
        self.preferred_desc = sorted(set(config.preferred_batch_sizes), reverse=True)

    def decide(self, queue, waiting, now_ms):
        if waiting >= self.max_batch_size:
            return BatchDecision(self.max_batch_size)
        for preferred in self.preferred_desc:
            if preferred <= waiting:
                return BatchDecision(preferred)
        due_ms = queue.oldest().node_arrival_ms + self.config.max_queue_delay_ms
        if now_ms >= due_ms:
            return BatchDecision(waiting)
        return BatchDecision(0, due_ms)
