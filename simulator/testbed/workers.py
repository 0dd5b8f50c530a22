"""Worker threads that run the model on batches taken from the batcher, and the per-request record
they fill in. Every timestamp is ``time.perf_counter_ns()`` (CLOCK_MONOTONIC on Linux), the clock
the load generator uses too, so server and client times can be subtracted across processes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from itertools import count
from typing import Any

import pandas as pd

from simulator.testbed.batcher import Batcher

Kernel = Callable[[int], Any]
"""The serving hook: runs one model call on a batch of the given size (inputs prepared beforehand)."""

NO_DEADLINE_NS = 2**62


class InFlight:
    """One request from arrival to reply; its fields become a row of the server's records."""

    __slots__ = (
        "arrival_ns",
        "batch_id",
        "batch_size",
        "class_name",
        "deadline_ns",
        "dequeue_ns",
        "enqueue_ns",
        "in_system_at_arrival",
        "in_system_at_dequeue",
        "kernel_end_ns",
        "kernel_error",
        "kernel_start_ns",
        "phase",
        "priority",
        "reply_sent_ns",
        "request_id",
        "waiter",
        "worker",
        "worker_done_ns",
    )

    def __init__(
        self, request_id: int, phase: str, class_name: str, priority: int, deadline_ns: int, arrival_ns: int
    ) -> None:
        self.request_id, self.phase, self.class_name = request_id, phase, class_name
        self.priority, self.deadline_ns, self.arrival_ns = priority, deadline_ns, arrival_ns
        self.enqueue_ns = self.dequeue_ns = self.kernel_start_ns = self.kernel_end_ns = -1
        self.worker_done_ns = self.reply_sent_ns = -1
        self.worker = self.batch_id = self.batch_size = -1
        self.in_system_at_arrival = self.in_system_at_dequeue = -1
        self.kernel_error = ""
        self.waiter: Any = None


RECORD_COLUMNS = {
    "request_id": "request id given by the client (unique within one server's life)",
    "phase": "what the request was sent for: profile, capacity, load, ...",
    "class": "request class name",
    "priority": "class priority (0 is served first under the priority discipline)",
    "deadline_ns": "absolute deadline: arrival + the class's deadline (2**62: none)",
    "arrival_ns": "request fully read by the server",
    "enqueue_ns": "pushed into the waiting line",
    "dequeue_ns": "taken by a worker (the whole batch at once)",
    "kernel_start_ns": "the model call began",
    "kernel_end_ns": "the model call returned",
    "worker_done_ns": "the worker handed the batch back and was free for the next one",
    "reply_sent_ns": "the response is written to the socket (stamped just before the write: a stamp after it "
    "could wait for the GIL up to the interpreter's switch interval)",
    "worker": "worker thread index",
    "batch_id": "batch counter of the server (one model call)",
    "batch_size": "requests in that batch",
    "in_system_at_arrival": "requests arrived and not yet replied to, this one included, at its arrival",
    "in_system_at_dequeue": "the same, when a worker took it",
    "kernel_error": "empty, or why the kernel failed",
}


def records_frame(requests: list[InFlight]) -> pd.DataFrame:
    """The server's records, one row per replied request, columns as in ``RECORD_COLUMNS``."""
    attributes = {column: "class_name" if column == "class" else column for column in RECORD_COLUMNS}
    return typed_records(pd.DataFrame({column: [getattr(r, name) for r in requests] for column, name in attributes.items()}))


def typed_records(frame: pd.DataFrame) -> pd.DataFrame:
    """A frame of server records with exactly the columns of ``RECORD_COLUMNS``, in order, typed as every server writes them."""
    texts = ("phase", "class", "kernel_error")
    integers = [c for c in RECORD_COLUMNS if c not in texts]
    return frame[list(RECORD_COLUMNS)].astype({c: "int64" for c in integers}).astype({c: "string" for c in texts})


class WorkerPool:
    """``workers`` threads, each looping: take a batch, run the kernel once on it, hand it back."""

    def __init__(
        self,
        kernel: Kernel,
        batcher: Batcher[InFlight],
        workers: int,
        done: Callable[[list[InFlight]], None],
        in_system: Callable[[], int],
        clock: Callable[[], int] = time.perf_counter_ns,
    ) -> None:
        self._kernel, self._batcher, self._done, self._in_system, self._clock = kernel, batcher, done, in_system, clock
        self._batch_ids = count()
        self._threads = [
            threading.Thread(target=self._work, args=(worker,), name=f"testbed-worker-{worker}", daemon=True)
            for worker in range(workers)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def join(self, timeout_s: float) -> None:
        """Wait for the workers to drain the batcher (after ``batcher.close()``)."""
        for thread in self._threads:
            thread.join(timeout_s)
        alive = [t.name for t in self._threads if t.is_alive()]
        if alive:
            raise TimeoutError(f"workers still running after {timeout_s} s: {alive}")

    def _work(self, worker: int) -> None:
        clock, kernel = self._clock, self._kernel
        while (batch := self._batcher.take()) is not None:
            dequeue_ns = clock()
            in_system = self._in_system()
            batch_id, size = next(self._batch_ids), len(batch)
            kernel_error = ""
            kernel_start_ns = clock()
            try:
                kernel(size)
            except Exception as failure:  # noqa: BLE001  (reported to each client of the batch; the worker goes on)
                kernel_error = f"{type(failure).__name__}: {failure}"
            kernel_end_ns = clock()
            for request in batch:
                request.dequeue_ns, request.kernel_start_ns, request.kernel_end_ns = (
                    dequeue_ns,
                    kernel_start_ns,
                    kernel_end_ns,
                )
                request.worker, request.batch_id, request.batch_size = worker, batch_id, size
                request.in_system_at_dequeue, request.kernel_error = in_system, kernel_error
            self._done(batch)
            done_ns = clock()  # read from the records only after the workers have stopped
            for request in batch:
                request.worker_done_ns = done_ns
