"""Queue disciplines of the testbed server: which waiting request a free worker takes next.

One small class per discipline behind the :class:`WaitingLine` protocol. All are non-preemptive
(a running kernel is never interrupted) and break ties by arrival order, as the simulator's
disciplines do. They are not thread-safe: the :class:`~simulator.testbed.batcher.Batcher` locks.
"""

from __future__ import annotations

import heapq
from collections import deque
from itertools import count
from typing import Generic, Protocol, TypeVar

from simulator.testbed.config import Discipline
from simulator.testbed.errors import TestbedError


class Queued(Protocol):
    """What a discipline reads from a waiting request."""

    priority: int
    deadline_ns: int


ItemT = TypeVar("ItemT", bound=Queued)


class WaitingLine(Protocol[ItemT]):
    """A waiting line: ``push`` a request, ``pop`` the one to serve next."""

    def push(self, item: ItemT) -> None: ...

    def pop(self) -> ItemT: ...

    def __len__(self) -> int: ...


class FifoLine(Generic[ItemT]):
    """First come, first served."""

    def __init__(self) -> None:
        self._waiting: deque[ItemT] = deque()

    def push(self, item: ItemT) -> None:
        self._waiting.append(item)

    def pop(self) -> ItemT:
        return self._waiting.popleft()

    def __len__(self) -> int:
        return len(self._waiting)


class PriorityLine(Generic[ItemT]):
    """Strict non-preemptive priority: the smallest ``priority`` number first, FIFO within a level."""

    def __init__(self) -> None:
        self._levels: dict[int, deque[ItemT]] = {}
        self._order: list[deque[ItemT]] = []
        self._count = 0

    def push(self, item: ItemT) -> None:
        level = self._levels.get(item.priority)
        if level is None:
            level = self._levels[item.priority] = deque()
            self._order = [self._levels[p] for p in sorted(self._levels)]
        level.append(item)
        self._count += 1

    def pop(self) -> ItemT:
        for level in self._order:
            if level:
                self._count -= 1
                return level.popleft()
        raise IndexError("pop from an empty queue")

    def __len__(self) -> int:
        return self._count


class EdfLine(Generic[ItemT]):
    """Earliest absolute deadline first (``deadline_ns``), FIFO among equal deadlines."""

    def __init__(self) -> None:
        self._heap: list[tuple[int, int, ItemT]] = []
        self._sequence = count()

    def push(self, item: ItemT) -> None:
        heapq.heappush(self._heap, (item.deadline_ns, next(self._sequence), item))

    def pop(self) -> ItemT:
        return heapq.heappop(self._heap)[2]

    def __len__(self) -> int:
        return len(self._heap)


LINES: dict[str, type] = {"fifo": FifoLine, "priority": PriorityLine, "edf": EdfLine}


def make_line(discipline: Discipline) -> WaitingLine:
    """An empty waiting line of the named discipline."""
    try:
        return LINES[discipline]()
    except KeyError:
        raise TestbedError(f"unknown queue discipline {discipline!r}; choose from {sorted(LINES)}") from None
