"""The hand-over from the server's event loop to its worker threads: a waiting line (the queue
discipline) plus Triton's dynamic batching rule.

A free worker takes ``max_batch_size`` requests when that many wait, else the largest preferred
batch size that is waiting, else it holds until the *oldest* waiting request (by enqueue time,
whatever the discipline serves first) has waited ``max_queue_delay_ms``, and then takes what
waits. Without batching (``max_batch_size`` 1) a worker takes one request as soon as there is one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

from simulator.testbed.config import BatchingConfig
from simulator.testbed.errors import TestbedError
from simulator.testbed.queues import WaitingLine

NS_PER_MS = 1_000_000
NS_PER_S = 1_000_000_000


class Batchable(Protocol):
    """A waiting request as the batcher sees it; ``enqueue_ns`` is stamped by :meth:`Batcher.put`."""

    priority: int
    deadline_ns: int
    enqueue_ns: int


ItemT = TypeVar("ItemT", bound=Batchable)


class Batcher(Generic[ItemT]):
    """Thread-safe: the event loop ``put``s requests, worker threads ``take`` batches."""

    def __init__(
        self, line: WaitingLine, batching: BatchingConfig, clock: Callable[[], int] = time.perf_counter_ns
    ) -> None:
        self._line = line
        self._max_batch_size = batching.max_batch_size
        self._max_queue_delay_ns = round(batching.max_queue_delay_ms * NS_PER_MS)
        self._preferred_desc = sorted(set(batching.preferred_batch_sizes), reverse=True)
        self._clock = clock
        self._changed = threading.Condition()
        self._enqueued_ns: dict[int, int] = {}  # id(item) → enqueue time, in enqueue order: first = oldest
        self._closed = False

    def put(self, item: ItemT) -> None:
        """Stamp ``item.enqueue_ns`` and queue it; refused once the batcher is closed."""
        with self._changed:
            if self._closed:
                raise TestbedError("the server is shutting down")
            item.enqueue_ns = self._clock()
            self._line.push(item)
            self._enqueued_ns[id(item)] = item.enqueue_ns
            self._changed.notify()

    def take(self) -> list[ItemT] | None:
        """Block until a batch is due and return it; ``None`` once closed and drained."""
        with self._changed:
            while True:
                batch, hold_ns = self._due(self._clock())
                if batch:
                    if len(self._line):
                        self._changed.notify()  # another free worker may take the rest
                    return batch
                if self._closed and not len(self._line):
                    return None
                self._changed.wait(None if hold_ns is None else hold_ns / NS_PER_S)

    def take_nowait(self) -> list[ItemT]:
        """The batch due now, or an empty list when nothing waits or the batch is still held."""
        with self._changed:
            return self._due(self._clock())[0]

    def close(self) -> None:
        """Refuse new requests; workers drain what waits (without holding) and then stop."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def __len__(self) -> int:
        with self._changed:
            return len(self._line)

    def _due(self, now_ns: int) -> tuple[list[ItemT], int | None]:
        """The batch to take now, or ([], how long to hold; None: until a request comes)."""
        waiting = len(self._line)
        if waiting == 0:
            return [], None
        size = self._size_now(waiting, now_ns)
        if size == 0:
            oldest_ns = next(iter(self._enqueued_ns.values()))
            return [], oldest_ns + self._max_queue_delay_ns - now_ns
        batch = [self._line.pop() for _ in range(size)]
        for item in batch:
            del self._enqueued_ns[id(item)]
        return batch, None

    def _size_now(self, waiting: int, now_ns: int) -> int:
        """How many requests to take now; 0 holds the free worker for the batch to fill."""
        if waiting >= self._max_batch_size:
            return self._max_batch_size
        for preferred in self._preferred_desc:
            if preferred <= waiting:
                return preferred
        oldest_ns = next(iter(self._enqueued_ns.values()))
        if self._closed or now_ns - oldest_ns >= self._max_queue_delay_ns:
            return waiting
        return 0
