"""A node's model memory: which models are resident within its budget, evicting idle ones (LRU)."""

from __future__ import annotations

from collections import OrderedDict


class ModelMemory:
    """Resident models (LRU order) within a memory budget; loads evict idle models first."""

    def __init__(self, memory_mb: float, sizes_mb: dict[str, float]) -> None:
        self.memory_mb = memory_mb
        self.sizes_mb = sizes_mb
        self.resident: OrderedDict[str, None] = OrderedDict()
        self.loading: dict[str, None] = {}  # memory is taken when a load starts, not when it ends
        self.in_use: dict[str, int] = {}
        self.load_starts_ms: list[float] = []  # when each completed cold load began

    def used_mb(self) -> float:
        return sum(self.sizes_mb[name] for name in self.resident) + sum(self.sizes_mb[name] for name in self.loading)

    def is_resident(self, model: str) -> bool:
        if model in self.resident:
            self.resident.move_to_end(model)
            return True
        return False

    def make_room(self, model: str) -> bool:
        """Evict idle least-recently-used models until ``model`` fits; False if it cannot yet."""
        need_mb = self.sizes_mb[model]
        while self.used_mb() + need_mb > self.memory_mb:
            idle = next((name for name in self.resident if not self.in_use.get(name)), None)
            if idle is None:
                return False
            del self.resident[idle]
        return True
