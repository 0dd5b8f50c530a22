"""Dynamic batching settings, after Triton's dynamic batcher.

A free worker takes ``max_batch_size`` waiting requests when that many wait, else the largest
preferred size that fits, else it holds until the request at the head of the queue has waited
``max_queue_delay_ms`` and then takes what is there. A request that waited longer than
``queue_timeout_ms`` is dropped when it reaches the head. Priorities inside the batcher are the
node's queue discipline.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, NonNegativeFloat, PositiveFloat, PositiveInt, model_validator


class BatchingSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_batch_size: PositiveInt = 1
    preferred_batch_sizes: list[PositiveInt] = Field(default_factory=list)
    max_queue_delay_ms: NonNegativeFloat = 0.0
    queue_timeout_ms: PositiveFloat | None = Field(None, description="drop a request that waited longer than this")

    @model_validator(mode="after")
    def _preferred_fit(self) -> "BatchingSpec":
        too_large = [size for size in self.preferred_batch_sizes if size > self.max_batch_size]
        if too_large:
            raise ValueError(f"preferred_batch_sizes {too_large} exceed max_batch_size {self.max_batch_size}")
        return self

    @property
    def preferred_desc(self) -> list[int]:
        return sorted(set(self.preferred_batch_sizes), reverse=True)

    @property
    def is_trivial(self) -> bool:
        """Batches of one, taken at once: exactly the unbatched node."""
        return self.max_batch_size == 1
