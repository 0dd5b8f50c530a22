"""A serving node: ``workers`` model instances in front of one queue with a discipline.

A request costs two scheduled events (the arrival that brought it, its service completion);
the node is driven by callbacks, with no SimPy process per request. Its collaborators, each a
policy or a small class of its own: the queue discipline (which request next), the admission
policy (whether a firm request is still worth serving), the batcher (when a free worker takes
how many), the executor (how a call runs: one event, or device stages) and the lifecycle
(failures and drains for model updates).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from simulator.errors import UnstableSystemError
from simulator.model.admission import AdmissionPolicy
from simulator.model.batching import Batcher
from simulator.model.disciplines import QueueDiscipline
from simulator.model.executor import Executor, PlainExecutor
from simulator.model.lifecycle import Lifecycle
from simulator.model.request import Request
from simulator.model.service_draws import ServiceDraws
from simulator.model.simulation import Due, Environment, cancel
from simulator.units import MS_PER_S


def _unconnected(_requests: Any) -> None:
    raise RuntimeError("node is not connected to a cluster")


class Node:
    """Workers and a queue; ``on_done``/``on_orphans`` are connected by the cluster.

    ``outstanding`` (waiting + in service) and ``outstanding_work_ms`` are what load-aware routers read.
    """

    def __init__(
        self,
        *,
        env: Environment,
        index: int,
        name: str,
        spec_name: str,
        workers: int,
        queue: QueueDiscipline,
        queue_capacity: int | None,
        admission: AdmissionPolicy,
        service: ServiceDraws,
        mean_service_ms: Sequence[float],
        max_queue_length: int,
        batcher: Batcher | None = None,
        executor: Executor | None = None,
    ) -> None:
        self.env = env
        self.index = index
        self.name = name
        self.spec_name = spec_name
        self.workers = workers
        self.queue = queue
        self.queue_capacity = queue_capacity
        self.admits = None if admission.drops_nothing else admission.admits
        self.single_draws = list(service.single)
        self.service_draw = service
        self.mean_service_ms = list(mean_service_ms)
        self.on_done: Callable[[Request], None] = _unconnected
        self.on_orphans: Callable[[list[Request]], None] = _unconnected
        self.max_queue_length = max_queue_length
        self.batcher = batcher if batcher is not None and not batcher.is_trivial else None
        self.queue_timeout_ms = batcher.queue_timeout_ms if batcher is not None else None
        self.single_events = self.batcher is None and executor is None
        self.executor = executor if executor is not None else PlainExecutor(env)
        self.executor.on_done = self._complete_batch
        self.lifecycle = Lifecycle()
        self.busy = 0
        self.waiting = 0
        self.outstanding = 0
        self.outstanding_work_ms = 0.0
        # calls running, in start order (a failure orphans their requests in that order): handle → is a batch
        self.running: dict[Any, bool] = {}
        self._hold_since_ms: float | None = None
        self._timer_at_ms: float | None = None

    @property
    def available(self) -> bool:
        """Up and taking requests (not failed, not draining for an update)."""
        return self.lifecycle.available

    # -- arrivals -----------------------------------------------------------------------------

    def submit(self, request: Request) -> None:
        now_ms = self.env.now
        request.node_index = self.index
        request.node_arrival_ms = now_ms
        if not self.lifecycle.available:
            self.on_orphans([request])
            return
        if self.busy < self.workers and self.single_events and self.queue_timeout_ms is None:
            self.outstanding += 1  # _enter, inlined on the hot path
            self.outstanding_work_ms += self.mean_service_ms[request.class_index]
            self._start_one(request, now_ms)
            return
        if self.waiting == self.queue_capacity and (self.busy == self.workers or self.waiting):
            self._drop(request, "queue_full")  # full, and no free worker to take it at once
            return
        self._enter(request)
        self.queue.push(request)
        self.waiting += 1
        if self.waiting > self.max_queue_length:
            raise UnstableSystemError(
                f"node {self.name!r}: queue grew past run.max_queue_length={self.max_queue_length} at "
                f"t={now_ms / MS_PER_S:.1f} s; the offered load exceeds what this node serves "
                "(add workers or nodes, lower the load, or set queue_capacity)"
            )
        if self.busy < self.workers:
            self._dispatch(now_ms)

    def _enter(self, request: Request) -> None:
        self.outstanding += 1
        self.outstanding_work_ms += self.mean_service_ms[request.class_index]

    def _leave(self, request: Request) -> None:
        self.outstanding -= 1
        self.outstanding_work_ms -= self.mean_service_ms[request.class_index]

    def _drop(self, request: Request, reason: str) -> None:
        request.start_ms = -1.0
        request.service_ms = 0.0
        request.drop_reason = reason
        request.end_ms = self.env.now
        self.on_done(request)

    # -- service ------------------------------------------------------------------------------

    def _start_one(self, request: Request, now_ms: float) -> None:
        self.busy += 1
        request.start_ms = now_ms
        service_ms = next(self.single_draws[request.class_index])
        request.service_ms = service_ms
        self.running[Due(self.env, service_ms, request, self._complete_one)] = False

    def _complete_one(self, event: Due) -> None:
        del self.running[event]
        request: Request = event.payload
        self.busy -= 1
        self.outstanding -= 1  # _leave, inlined on the hot path
        self.outstanding_work_ms -= self.mean_service_ms[request.class_index]
        request.end_ms = self.env.now
        self.on_done(request)
        self._after_completion()

    def _start_batch(self, batch: list[Request], now_ms: float) -> None:
        self.busy += 1
        size = len(batch)
        service_ms = self.service_draw(batch[0].class_index, size)
        hold_since_ms = self._hold_since_ms
        for request in batch:
            request.start_ms = now_ms
            request.service_ms = service_ms
            request.batch_size = size
            if hold_since_ms is not None:
                request.batch_wait_ms = now_ms - max(request.node_arrival_ms, hold_since_ms)
        self._hold_since_ms = None
        self.running[self.executor.start(batch, service_ms)] = True

    def _complete_batch(self, handle: Any, batch: list[Request]) -> None:
        del self.running[handle]
        self.busy -= 1
        now_ms = self.env.now
        for request in batch:
            self._leave(request)
            request.end_ms = now_ms
            self.on_done(request)
        self._after_completion()

    def _after_completion(self) -> None:
        if self.waiting:
            self._dispatch(self.env.now)
        if self.outstanding == 0:
            self.lifecycle.emptied()

    # -- dispatch: which waiting requests a free worker takes ---------------------------------

    def _dispatch(self, now_ms: float) -> None:
        while self.busy < self.workers and self.waiting:
            size = self._batch_size_now(now_ms)
            if size == 0:
                return
            batch = self._take(size, now_ms)
            if not batch:
                continue
            if self.single_events:
                self._start_one(batch[0], now_ms)
            else:
                self._start_batch(batch, now_ms)

    def _batch_size_now(self, now_ms: float) -> int:
        """How many requests to take now; 0 holds the free worker for the batch to fill."""
        if self.batcher is None:
            return 1
        decision = self.batcher.decide(self.queue, self.waiting, now_ms)
        if decision.take:
            return decision.take
        due_ms = decision.hold_until_ms
        if self._hold_since_ms is None:
            self._hold_since_ms = now_ms
        if self._timer_at_ms is None or self._timer_at_ms > due_ms:
            self._timer_at_ms = due_ms
            Due(self.env, due_ms - now_ms, None, self._on_batch_timer)
        return 0

    def _on_batch_timer(self, _event: Due) -> None:
        self._timer_at_ms = None
        if self.waiting:  # a draining node still serves what it holds
            self._dispatch(self.env.now)

    def _take(self, size: int, now_ms: float) -> list[Request]:
        """Pop up to ``size`` requests, dropping those past their queue timeout or deadline."""
        batch = []
        timeout_ms = self.queue_timeout_ms
        while len(batch) < size and self.waiting:
            request = self.queue.pop()
            self.waiting -= 1
            if timeout_ms is not None and now_ms - request.node_arrival_ms > timeout_ms:
                self._leave(request)
                self._drop(request, "queue_timeout")
            elif self.admits is not None and not self.admits(request, now_ms):
                self._leave(request)
                self._drop(request, "deadline")
            else:
                batch.append(request)
        return batch

    # -- failures and updates -----------------------------------------------------------------

    def fail(self) -> None:
        """Go down now: every queued and running request is handed back as an orphan."""
        self.lifecycle.fail()
        orphans = []
        for handle, is_batch in self.running.items():
            if is_batch:
                orphans.extend(self.executor.cancel(handle))
            else:
                cancel(handle)  # the completion is cancelled, as SimPy cancels an interrupted wait
                orphans.append(handle.payload)
        self.running.clear()
        self.executor.fail()  # loaded models are lost with the node
        while self.waiting:
            orphans.append(self.queue.pop())
            self.waiting -= 1
        self.busy = 0
        self.outstanding = 0
        self.outstanding_work_ms = 0.0
        self._hold_since_ms = None
        for request in orphans:
            request.start_ms = -1.0
            request.batch_wait_ms = request.load_ms = request.copy_ms = 0.0
        if orphans:
            self.on_orphans(orphans)

    def drain(self, on_drained: Callable[[], None]) -> None:
        """Stop taking requests; call ``on_drained`` once those already here are finished."""
        self.lifecycle.drain(on_drained)
        if self.outstanding == 0:
            self.lifecycle.emptied()

    def recover(self) -> None:
        self.lifecycle.recover()
