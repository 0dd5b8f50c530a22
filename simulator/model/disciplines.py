"""Queue disciplines: which waiting request a free worker takes next.

All are non-preemptive (a running kernel cannot be interrupted); ties go to the earlier arrival.
"""

from __future__ import annotations

import heapq
from abc import ABC, abstractmethod
from collections import deque
from itertools import count
from typing import ClassVar

from pydantic import BaseModel

from simulator.model.request import Request
from simulator.registry import DISCIPLINES
from simulator.scenario.nodes import EdfDiscipline, FifoDiscipline, PriorityDiscipline


class QueueDiscipline(ABC):
    """A waiting line: ``push`` a request, ``pop`` the one to serve next."""

    Config: ClassVar[type[BaseModel]]

    def __init__(self, config: BaseModel) -> None:
        self.config = config

    @abstractmethod
    def push(self, request: Request) -> None: ...

    @abstractmethod
    def pop(self) -> Request: ...

    @abstractmethod
    def peek(self) -> Request:
        """The request ``pop`` would return, left in place."""

    @abstractmethod
    def __len__(self) -> int: ...


@DISCIPLINES.register
class Fifo(QueueDiscipline):
    """First come, first served."""

    Config = FifoDiscipline

    def __init__(self, config):
        super().__init__(config)
        self._waiting: deque[Request] = deque()

    def push(self, request):
        self._waiting.append(request)

    def pop(self):
        return self._waiting.popleft()

    def peek(self):
        return self._waiting[0]

    def __len__(self):
        return len(self._waiting)


class _HeapDiscipline(QueueDiscipline):
    """Serves the smallest (key, arrival sequence) first."""

    def __init__(self, config: BaseModel) -> None:
        super().__init__(config)
        self._heap: list[tuple[float, int, Request]] = []
        self._sequence = count()

    @staticmethod
    @abstractmethod
    def key(request: Request) -> float: ...

    def push(self, request):
        heapq.heappush(self._heap, (self.key(request), next(self._sequence), request))

    def pop(self):
        return heapq.heappop(self._heap)[2]

    def peek(self):
        return self._heap[0][2]

    def __len__(self):
        return len(self._heap)


@DISCIPLINES.register
class StrictPriority(QueueDiscipline):
    """Non-preemptive strict priority: the smallest ``priority`` number goes first (0 = most urgent).

    One FIFO line per priority level (a bucket queue): O(levels) pop, no heap tuples.
    """

    Config = PriorityDiscipline

    def __init__(self, config):
        super().__init__(config)
        self._levels: dict[int, deque[Request]] = {}
        self._order: list[deque[Request]] = []
        self._count = 0

    def push(self, request):
        level = self._levels.get(request.priority)
        if level is None:
            level = self._levels[request.priority] = deque()
            self._order = [self._levels[p] for p in sorted(self._levels)]
        level.append(request)
        self._count += 1

    def pop(self):
        self._count -= 1
        for level in self._order:
            if level:
                return level.popleft()
        raise IndexError("pop from an empty queue")

    def peek(self):
        for level in self._order:
            if level:
                return level[0]
        raise IndexError("peek into an empty queue")

    def __len__(self):
        return self._count


@DISCIPLINES.register
class EarliestDeadlineFirst(_HeapDiscipline):
    """Earliest absolute deadline first (non-preemptive EDF)."""

    Config = EdfDiscipline

    @staticmethod
    def key(request):
        return request.deadline_ms
