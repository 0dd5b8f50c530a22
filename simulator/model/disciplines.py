"""Queue disciplines: which waiting request a free worker takes next.

A discipline orders the live requests; requests can also leave before service (a queue timeout:
``discard``) or be demoted behind every request that has not timed out (``delay``, Triton's
DELAY action), both without a search: entries of requests that left are skipped when they reach
the front (``request.in_queue`` says whether a request still waits). Ties go to the earlier
arrival. ``oldest`` is the longest-waiting request, which a batcher's delay is measured from.
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
from simulator.scenario.nodes import EdfDiscipline, FifoDiscipline, PreemptivePriorityDiscipline, PriorityDiscipline


def _live_head(line: deque[Request]) -> Request | None:
    """The first request of a FIFO line that still waits, dropping the entries of those that left."""
    while line:
        head = line[0]
        if head.in_queue and not head.delayed:
            return head
        line.popleft()
    return None


class QueueDiscipline(ABC):
    """A waiting line: ``push`` a request, ``pop`` the one to serve next; ``preemptive`` ones may interrupt."""

    Config: ClassVar[type[BaseModel]]
    preemptive: ClassVar[bool] = False

    def __init__(self, config: BaseModel) -> None:
        self.config = config
        self._count = 0
        self._delayed: deque[Request] = deque()  # timed-out requests served after all others, in FIFO order

    def __len__(self) -> int:
        return self._count

    def push(self, request: Request) -> None:
        request.in_queue = True
        self._count += 1
        self._push(request)

    def pop(self) -> Request:
        request = self._front()
        if request is not None:
            self._take(request)
            return request
        while True:
            request = self._delayed.popleft()
            if request.in_queue:
                request.in_queue = False
                self._count -= 1
                return request

    def peek(self) -> Request:
        """The request ``pop`` would return, left in place."""
        request = self._front()
        if request is not None:
            return request
        while not self._delayed[0].in_queue:
            self._delayed.popleft()
        return self._delayed[0]

    def oldest(self) -> Request:
        """The live request that has waited longest (earliest node arrival)."""
        candidates = [request for request in (self._oldest(), _live_delayed(self._delayed)) if request is not None]
        return min(candidates, key=_node_arrival)

    def discard(self, request: Request) -> None:
        """``request`` leaves the line (it gave up waiting); its entry is skipped later."""
        request.in_queue = False
        self._count -= 1

    def delay(self, request: Request) -> None:
        """Serve ``request`` after every request that has not been delayed."""
        request.delayed = True
        self._delayed.append(request)

    @abstractmethod
    def _push(self, request: Request) -> None: ...

    @abstractmethod
    def _front(self) -> Request | None:
        """The next live, not delayed, request (None if there is none), left in place."""

    @abstractmethod
    def _take(self, request: Request) -> None:
        """Remove ``request``, which ``_front`` just returned."""

    @abstractmethod
    def _oldest(self) -> Request | None:
        """The live, not delayed, request with the earliest node arrival (None if there is none)."""

    @abstractmethod
    def rank(self, request: Request) -> tuple:
        """Order key: the smallest is served first (to pick among several lines, one per model)."""


def _node_arrival(request: Request) -> float:
    return request.node_arrival_ms


def _live_delayed(line: deque[Request]) -> Request | None:
    while line and not line[0].in_queue:
        line.popleft()
    return line[0] if line else None


@DISCIPLINES.register
class Fifo(QueueDiscipline):
    """First come, first served."""

    Config = FifoDiscipline

    def __init__(self, config):
        super().__init__(config)
        self._waiting: deque[Request] = deque()

    def _push(self, request):
        self._waiting.append(request)

    def _front(self):
        return _live_head(self._waiting)

    def _take(self, request):
        self._waiting.popleft()
        request.in_queue = False
        self._count -= 1

    def _oldest(self):
        return _live_head(self._waiting)

    def rank(self, request):
        return (request.node_arrival_ms,)


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

    def _level(self, priority: int) -> deque[Request]:
        level = self._levels.get(priority)
        if level is None:
            level = self._levels[priority] = deque()
            self._order = [self._levels[p] for p in sorted(self._levels)]
        return level

    def _push(self, request):
        self._level(request.priority).append(request)

    def _front(self):
        for level in self._order:
            head = _live_head(level)
            if head is not None:
                return head
        return None

    def _take(self, request):
        self._levels[request.priority].popleft()
        request.in_queue = False
        self._count -= 1

    def _oldest(self):
        heads = [head for head in map(_live_head, self._order) if head is not None]
        return min(heads, key=_node_arrival) if heads else None

    def rank(self, request):
        return (request.priority, request.node_arrival_ms)


@DISCIPLINES.register
class PreemptivePriority(StrictPriority):
    """Preemptive strict priority (resume or repeat): the node interrupts a less urgent call for an arrival.

    An interrupted request goes back to the front of its priority level, so it is the next of its
    level to run again.
    """

    Config = PreemptivePriorityDiscipline
    preemptive = True

    def push_front(self, request: Request) -> None:
        request.in_queue = True
        self._count += 1
        self._level(request.priority).appendleft(request)


@DISCIPLINES.register
class EarliestDeadlineFirst(QueueDiscipline):
    """Earliest absolute deadline first (non-preemptive EDF)."""

    Config = EdfDiscipline

    def __init__(self, config):
        super().__init__(config)
        self._heap: list[tuple[float, int, Request]] = []
        self._arrivals: deque[Request] = deque()  # push order = node-arrival order, for ``oldest``
        self._sequence = count()

    def _push(self, request):
        heapq.heappush(self._heap, (request.deadline_ms, next(self._sequence), request))
        self._arrivals.append(request)

    def _front(self):
        heap = self._heap
        while heap:
            request = heap[0][2]
            if request.in_queue and not request.delayed:
                return request
            heapq.heappop(heap)
        return None

    def _take(self, request):
        heapq.heappop(self._heap)
        request.in_queue = False
        self._count -= 1
        _live_head(self._arrivals)  # trims the entries of requests already gone

    def _oldest(self):
        return _live_head(self._arrivals)

    def rank(self, request):
        return (request.deadline_ms, request.node_arrival_ms)
