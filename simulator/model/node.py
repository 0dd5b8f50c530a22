"""A serving node: ``workers`` model instances in front of a waiting room with a discipline.

A request costs two scheduled events (the arrival that brought it, its service completion);
the node is driven by callbacks, with no SimPy process per request. Its collaborators, each a
policy or a small class of its own: the queue discipline (which request next), the admission
policy (whether a firm request is still worth serving), the queue policy (timeouts and sizes per
priority), the batcher (when a free worker takes how many), the executor (how a call runs: one
event, or device stages) and the lifecycle (failures and drains for model updates).

Every request goes through one rule: it starts at once on a free worker only when nothing else
would decide otherwise (no admission, batching, queue policy or preemption to apply); else it
joins the waiting room and ``_dispatch`` — the only other way to a worker — applies them all.

Busy workers and waiting requests are integrated exactly over time (``areas``), so utilization
and mean queue length count everything that held a worker or a place, work later lost to a
failure included.
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
from simulator.model.machine import CallTime
from simulator.model.request import Request
from simulator.model.service_draws import NodeServiceDraws
from simulator.model.simulation import Due, Environment, cancel
from simulator.scenario.nodes import QueuePolicies
from simulator.units import MS_PER_S

NodeAreas = tuple[float, float, float]  # (∫ busy workers dt, ∫ waiting requests dt, time out of service), ms
Marks = dict[int, tuple[float, list[NodeAreas]]]  # fine-batch marks: request id → (its arrival time, every node's areas)


def queue_overflow(node_name: str, max_queue_length: int, now_ms: float) -> UnstableSystemError:
    """The error of a queue that outgrew ``run.max_queue_length`` (both engines raise it)."""
    return UnstableSystemError(
        f"node {node_name!r}: queue grew past run.max_queue_length={max_queue_length} at "
        f"t={now_ms / MS_PER_S:.1f} s; the offered load exceeds what this node serves "
        "(add workers or nodes, lower the load, or set queue_capacity)"
    )


def _unconnected(_requests: Any) -> None:
    raise RuntimeError("node is not connected to a cluster")


class Node:
    """Workers and a waiting room; ``on_done``/``on_orphans`` are connected by the cluster."""

    def __init__(
        self,
        *,
        env: Environment,
        index: int,
        name: str,
        spec_name: str,
        spec_index: int,
        workers: int,
        queues: Sequence[QueueDiscipline],
        model_group: Sequence[int],
        queue_capacity: int | None,
        admission: AdmissionPolicy,
        service: NodeServiceDraws,
        mean_service_ms: Sequence[float],
        max_queue_length: int,
        queue_policy: QueuePolicies | None = None,
        batcher: Batcher | None = None,
        executor: Executor | None = None,
        call_time: CallTime | None = None,
    ) -> None:
        self.env = env
        self.index = index
        self.name = name
        self.spec_name = spec_name
        self.spec_index = spec_index
        self.workers = workers
        self.queues = list(queues)  # one per model group when batching (a batch holds one model)
        self.queue = self.queues[0]
        self.model_group = list(model_group)  # class index → its queue
        self.queue_capacity = queue_capacity
        self.admission = admission
        self.admits = None if admission.drops_nothing else admission.admits
        self.service = service
        self.ordered_draws = service.single
        self.mean_service_ms = list(mean_service_ms)
        self.max_queue_length = max_queue_length
        self.queue_policy = queue_policy
        self.batcher = batcher if batcher is not None and not batcher.is_trivial else None
        self.preemption = self.queue.config.mode if self.queue.preemptive else None
        self.simple = (
            self.batcher is None and executor is None and self.admits is None and queue_policy is None
            and self.preemption is None
        )
        self.single_calls = self.batcher is None and executor is None  # one request per call, one event
        self.call_time = call_time  # the machine's speed and overhead on each call (None: the service time as drawn)
        self.executor = executor if executor is not None else PlainExecutor(env)
        self.executor.on_done = self._complete_batch
        self.lifecycle = Lifecycle()
        self.on_done: Callable[[Request], None] = _unconnected
        self.on_orphans: Callable[[list[Request]], None] = _unconnected
        self.busy = 0
        self.waiting = 0
        self.outstanding = 0  # waiting + in service: what a drain waits for
        self.busy_area = 0.0  # ∫ busy workers dt (ms), up to ``_area_at_ms``
        self.queue_area = 0.0  # ∫ waiting requests dt (ms)
        self._area_at_ms = 0.0
        self.down_ms = 0.0  # time out of service (failed or held for an update), up to ``_down_since_ms``
        self._down_since_ms: float | None = None
        self._waiting_at: dict[int, int] = {}  # priority → waiting requests, with a queue policy
        # calls running, in start order (a failure orphans their requests in that order): handle → is a batch
        self.running: dict[Any, bool] = {}
        self._hold_since_ms: float | None = None
        self._timer_at_ms: float | None = None
        if self.preemption is not None:
            self._start_one = self._start_preemptible  # type: ignore[method-assign]

    @property
    def available(self) -> bool:
        """Up and taking requests (not failed, not draining for an update)."""
        return self.lifecycle.available

    def areas(self, now_ms: float) -> NodeAreas:
        """(∫ busy workers dt, ∫ waiting requests dt, time out of service) from time 0 to ``now_ms``, in ms."""
        elapsed_ms = now_ms - self._area_at_ms
        down_ms = self.down_ms + (now_ms - self._down_since_ms if self._down_since_ms is not None else 0.0)
        return self.busy_area + self.busy * elapsed_ms, self.queue_area + self.waiting * elapsed_ms, down_ms

    def _advance(self, now_ms: float) -> None:
        elapsed_ms = now_ms - self._area_at_ms
        if elapsed_ms:
            self.busy_area += self.busy * elapsed_ms
            self.queue_area += self.waiting * elapsed_ms
            self._area_at_ms = now_ms

    # -- arrivals -----------------------------------------------------------------------------

    def submit(self, request: Request) -> None:
        now_ms = self.env.now
        request.node_index = self.index
        request.node_arrival_ms = now_ms
        if not self.lifecycle.available:
            self.on_orphans([request])
            return
        if self.simple and self.busy < self.workers:
            self._advance(now_ms)
            self.outstanding += 1
            self._start_one(request, now_ms)
            return
        policy = self.queue_policy.for_priority(request.priority) if self.queue_policy is not None else None
        if policy is not None and policy.max_queue_size is not None and self._waiting_at.get(request.priority, 0) >= policy.max_queue_size:
            self._drop(request, "queue_full")
            return
        full = self.queue_capacity is not None and self.waiting >= self.queue_capacity
        if full and self.busy == self.workers and not self._preempts(request):
            self._drop(request, "queue_full")  # no place, and no worker to take it at once
            return
        self.outstanding += 1
        self._enqueue(request, now_ms)
        if policy is not None and policy.timeout_ms is not None:
            Due(self.env, policy.timeout_ms, (request, now_ms), self._on_queue_timeout)
        if self.waiting > self.max_queue_length:
            raise queue_overflow(self.name, self.max_queue_length, now_ms)
        if self.preemption is not None and self.busy == self.workers:
            self._preempt_for(request, now_ms)
        if self.busy < self.workers:
            self._dispatch(now_ms, close_batch=full)

    def _enqueue(self, request: Request, now_ms: float) -> None:
        self._advance(now_ms)
        self.queues[self.model_group[request.class_index]].push(request)
        self.waiting += 1
        if self.queue_policy is not None:
            self._waiting_at[request.priority] = self._waiting_at.get(request.priority, 0) + 1

    def _dequeued(self, request: Request, now_ms: float) -> None:
        """Bookkeeping of a request that left the waiting room (popped, or timed out)."""
        self._advance(now_ms)
        self.waiting -= 1
        if self.queue_policy is not None:
            self._waiting_at[request.priority] -= 1

    def _drop(self, request: Request, reason: str) -> None:
        request.start_ms = -1.0
        request.service_ms = 0.0
        request.drop_reason = reason
        request.end_ms = self.env.now
        self.on_done(request)

    def _on_queue_timeout(self, event: Due) -> None:
        """A request's queue-policy timeout: if it still waits here, reject it now or serve it last."""
        request, arrived_ms = event.payload
        if not request.in_queue or request.delayed or request.node_index != self.index or request.node_arrival_ms != arrived_ms:
            return  # started, gone, or waiting on another visit
        policy = self.queue_policy.for_priority(request.priority)
        queue = self.queues[self.model_group[request.class_index]]
        if policy.timeout_action == "delay":
            queue.delay(request)
            return
        queue.discard(request)
        now_ms = self.env.now
        self._dequeued(request, now_ms)
        self.outstanding -= 1
        self._drop(request, "queue_timeout")
        self._after_completion(now_ms)

    # -- service ------------------------------------------------------------------------------

    def _service_ms(self, request: Request) -> float:
        """The request's single-call time here: drawn at its arrival, or from this node's ordered stream."""
        service_ms = request.requirement_ms[self.spec_index]
        return next(self.ordered_draws[request.class_index]) if service_ms is None else service_ms

    def _start_one(self, request: Request, now_ms: float) -> None:
        self.busy += 1
        request.start_ms = now_ms
        service_ms = request.requirement_ms[self.spec_index]
        if service_ms is None:
            service_ms = next(self.ordered_draws[request.class_index])
        if self.call_time is not None:
            service_ms = self.call_time(service_ms, self.outstanding)
        request.service_ms = service_ms
        self.running[Due(self.env, service_ms, request, self._complete_one)] = False

    def _start_preemptible(self, request: Request, now_ms: float) -> None:
        """``_start_one`` on a preemptive node: a request interrupted before continues or starts over."""
        self.busy += 1
        if request.start_ms < 0:
            request.start_ms = now_ms
            request.service_ms = 0.0
            request.remaining_ms = self._service_ms(request)
            if self.call_time is not None:
                request.remaining_ms = self.call_time(request.remaining_ms, self.outstanding)
        else:
            request.preempted_ms += now_ms - request.due_ms  # ``due_ms`` holds when it was interrupted
        request.segment_start_ms = now_ms
        request.due_ms = now_ms + request.remaining_ms
        self.running[Due(self.env, request.remaining_ms, request, self._complete_preemptible)] = False

    def _complete_preemptible(self, event: Due) -> None:
        request: Request = event.payload
        request.service_ms += request.remaining_ms
        self._complete_one(event)

    def _complete_one(self, event: Due) -> None:
        del self.running[event]
        request: Request = event.payload
        now_ms = event.at_ms
        self._advance(now_ms)
        self.busy -= 1
        self.outstanding -= 1
        request.end_ms = now_ms
        self.on_done(request)
        self._after_completion(now_ms)

    def _preempts(self, request: Request) -> bool:
        """Whether ``request`` would interrupt a running call (preemptive nodes only)."""
        return self.preemption is not None and any(
            not is_batch and handle.payload.priority > request.priority for handle, is_batch in self.running.items()
        )

    def _preempt_for(self, request: Request, now_ms: float) -> None:
        """Interrupt the least urgent running call (the latest started among them) if ``request`` is more urgent."""
        victims = [handle for handle in self.running if handle.payload.priority > request.priority]
        if not victims:
            return
        victim = max(victims, key=lambda handle: (handle.payload.priority, handle.payload.segment_start_ms))
        cancel(victim)
        del self.running[victim]
        interrupted: Request = victim.payload
        done_ms = now_ms - interrupted.segment_start_ms
        if self.preemption == "resume":
            interrupted.service_ms += done_ms
            interrupted.remaining_ms -= done_ms
        else:  # repeat: the work done is lost, the same service starts over
            interrupted.service_ms += done_ms
            interrupted.remaining_ms = interrupted.due_ms - interrupted.segment_start_ms
        interrupted.due_ms = now_ms
        self._advance(now_ms)
        self.busy -= 1
        self.queue.push_front(interrupted)
        self.waiting += 1
        if self.queue_policy is not None:
            self._waiting_at[interrupted.priority] = self._waiting_at.get(interrupted.priority, 0) + 1

    def _start_batch(self, batch: list[Request], now_ms: float) -> None:
        self.busy += 1
        size = len(batch)
        first = batch[0]
        service_ms = self._service_ms(first) if size == 1 else self.service.batch(first.class_index, size)
        if self.call_time is not None:
            service_ms = self.call_time(service_ms, self.outstanding)
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
        now_ms = self.env.now
        self._advance(now_ms)
        self.busy -= 1
        self.outstanding -= len(batch)
        for request in batch:
            request.end_ms = now_ms
            self.on_done(request)
        self._after_completion(now_ms)

    def _after_completion(self, now_ms: float) -> None:
        if self.waiting and self.busy < self.workers:
            self._dispatch(now_ms)
        if self.outstanding == 0:
            self.lifecycle.emptied()

    # -- dispatch: which waiting requests a free worker takes ---------------------------------

    def _dispatch(self, now_ms: float, close_batch: bool = False) -> None:
        """Start calls on free workers while requests wait; ``close_batch``: a full waiting room, take what waits now."""
        while self.busy < self.workers and self.waiting:
            if self.batcher is None:  # one request per call: the discipline's next, unless admission drops it
                request = self._admitted(self.queue, now_ms)
                if request is None:
                    continue
                if self.single_calls:
                    self._start_one(request, now_ms)
                else:
                    self._start_batch([request], now_ms)
                continue
            batch = self._next_batch(now_ms, close_batch)
            if batch is None:
                return
            if batch:
                self._start_batch(batch, now_ms)

    def _next_batch(self, now_ms: float, close_batch: bool) -> list[Request] | None:
        """The requests of the batcher's next call (empty: those taken were all dropped), or None: hold the worker."""
        lines = sorted((line for line in self.queues if len(line)), key=lambda line: line.rank(line.peek()))
        hold_until_ms = None
        for line in lines:
            decision = self.batcher.decide(line, len(line), now_ms)
            if decision.take or close_batch:
                return self._take(line, decision.take or min(len(line), self.batcher.max_batch_size), now_ms)
            hold_until_ms = decision.hold_until_ms if hold_until_ms is None else min(hold_until_ms, decision.hold_until_ms)
        if self._hold_since_ms is None:
            self._hold_since_ms = now_ms
        if self._timer_at_ms is None or self._timer_at_ms > hold_until_ms:
            self._timer_at_ms = hold_until_ms
            Due(self.env, hold_until_ms - now_ms, None, self._on_batch_timer)
        return None

    def _on_batch_timer(self, _event: Due) -> None:
        self._timer_at_ms = None
        if self.waiting and self.busy < self.workers:  # a draining node still serves what it holds
            self._dispatch(self.env.now)

    def _take(self, line: QueueDiscipline, size: int, now_ms: float) -> list[Request]:
        """Pop up to ``size`` requests of one line, dropping those admission control refuses."""
        batch = []
        while len(batch) < size and len(line):
            request = self._admitted(line, now_ms)
            if request is not None:
                batch.append(request)
        return batch

    def _admitted(self, line: QueueDiscipline, now_ms: float) -> Request | None:
        """The line's next request, out of the waiting room; None when admission control dropped it."""
        request = line.pop()
        self._dequeued(request, now_ms)
        if self.admits is not None and not self.admits(request, now_ms):
            self.outstanding -= 1
            self._drop(request, "deadline")
            return None
        return request

    # -- failures and updates -----------------------------------------------------------------

    def fail(self) -> None:
        """Go down now: every queued and running request is handed back as an orphan."""
        now_ms = self.env.now
        self._going_down(now_ms)
        self.lifecycle.fail()
        self._advance(now_ms)
        orphans = []
        for handle, is_batch in self.running.items():
            if is_batch:
                orphans.extend(self.executor.cancel(handle))
            else:
                cancel(handle)  # the completion is cancelled, as SimPy cancels an interrupted wait
                orphans.append(handle.payload)
        self.running.clear()
        self.executor.fail()  # loaded models are lost with the node
        for line in self.queues:
            while len(line):
                orphans.append(line.pop())
        self.busy = 0
        self.waiting = 0
        self.outstanding = 0
        self._waiting_at.clear()
        self._hold_since_ms = None
        for request in orphans:
            request.lost_ms += now_ms - request.node_arrival_ms
            request.start_ms = -1.0
            request.service_ms = request.batch_wait_ms = request.load_ms = request.copy_ms = 0.0
            request.preempted_ms = request.remaining_ms = 0.0
        self.lifecycle.emptied()
        if orphans:
            self.on_orphans(orphans)

    def drain(self, on_drained: Callable[[], None]) -> None:
        """Stop taking requests; call ``on_drained`` once those already here are finished."""
        self._going_down(self.env.now)
        self.lifecycle.drain(on_drained)
        if self.outstanding == 0:
            self.lifecycle.emptied()

    def recover(self) -> None:
        """One reason for being out of service is over (a failure repaired, an update's reload done)."""
        self.lifecycle.release()
        if self.lifecycle.available:
            self.down_ms += self.env.now - self._down_since_ms
            self._down_since_ms = None

    def _going_down(self, now_ms: float) -> None:
        if self.lifecycle.available:
            self._down_since_ms = now_ms
