"""A serving node: ``workers`` identical workers in front of one queue with a discipline.

Each request costs two scheduled events (the arrival that brought it, its service completion);
the node is driven by callbacks, with no SimPy process per request.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import simpy

from simulator.errors import UnstableSystemError
from simulator.model.admission import AdmissionPolicy
from simulator.model.disciplines import QueueDiscipline
from simulator.model.events import Due
from simulator.model.request import Request


class Node:
    """Workers and a queue; ``outstanding`` (waiting + in service) is what load-aware routers read."""

    def __init__(
        self,
        env: simpy.Environment,
        index: int,
        name: str,
        workers: int,
        queue: QueueDiscipline,
        queue_capacity: int | None,
        admission: AdmissionPolicy,
        service_draws: Sequence[Iterator[float]],
        mean_service_ms: Sequence[float],
        on_done: Callable[[Request], None],
        max_queue_length: int,
    ) -> None:
        self.env = env
        self.index = index
        self.name = name
        self.workers = workers
        self.queue = queue
        self.queue_capacity = queue_capacity
        self.admits = None if admission.drops_nothing else admission.admits
        self.service_draws = list(service_draws)
        self.mean_service_ms = list(mean_service_ms)
        self.on_done = on_done
        self.max_queue_length = max_queue_length
        self.busy = 0
        self.waiting = 0
        self.outstanding = 0
        self.outstanding_work_ms = 0.0

    def submit(self, request: Request) -> None:
        request.node_index = self.index
        if self.busy < self.workers:
            self._start(request, self.env._now)
        elif self.waiting == self.queue_capacity:
            self._drop(request, "queue_full")
            return
        else:
            self.queue.push(request)
            self.waiting += 1
            if self.waiting > self.max_queue_length:
                raise UnstableSystemError(
                    f"node {self.name!r}: queue grew past run.max_queue_length={self.max_queue_length} at "
                    f"t={self.env._now / 1000:.1f} s; the offered load exceeds what this node serves "
                    "(add workers or nodes, lower the load, or set queue_capacity)"
                )
        self.outstanding += 1
        self.outstanding_work_ms += self.mean_service_ms[request.class_index]

    def _start(self, request: Request, now_ms: float) -> None:
        self.busy += 1
        request.start_ms = now_ms
        service_ms = next(self.service_draws[request.class_index])
        request.service_ms = service_ms
        Due(self.env, service_ms, request, self._complete)

    def _drop(self, request: Request, reason: str) -> None:
        request.start_ms = -1.0
        request.service_ms = 0.0
        request.drop_reason = reason
        request.end_ms = self.env._now
        self.on_done(request)

    def _complete(self, event: Due) -> None:
        request: Request = event._value
        self.busy -= 1
        self.outstanding -= 1
        self.outstanding_work_ms -= self.mean_service_ms[request.class_index]
        now_ms = self.env._now
        request.end_ms = now_ms
        self.on_done(request)
        while self.waiting:
            self.waiting -= 1
            waiting = self.queue.pop()
            if self.admits is None or self.admits(waiting, now_ms):
                self._start(waiting, now_ms)
                return
            self.outstanding -= 1
            self.outstanding_work_ms -= self.mean_service_ms[waiting.class_index]
            self._drop(waiting, "deadline")
