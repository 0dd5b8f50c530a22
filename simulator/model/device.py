"""One call on a worker, in stages: model load (on a model-cache miss), host-to-device copy,
compute, device-to-host copy.

Copies run on the node's copy engines (one FIFO line per direction, shared by its workers), so
one worker's copy overlaps another's compute, as on a GPU with separate copy streams. Compute
slows down when several workers compute at once on the device (f(k) from the scenario or from a
profile's concurrency runs). Used by nodes that declare a ``device`` or a ``model_cache``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence

from simulator.model.executor import Executor
from simulator.model.model_memory import ModelMemory
from simulator.model.request import Request
from simulator.model.simulation import Due, Environment, cancel
from simulator.scenario.nodes import DeviceSpec


class CopyJob:
    """One queued or running copy; the handle ``CopyEngine.cancel`` takes."""

    __slots__ = ("duration_ms", "then", "due")

    def __init__(self, duration_ms: float, then: Callable[[], None]) -> None:
        self.duration_ms = duration_ms
        self.then = then
        self.due: Due | None = None  # set once the copy runs on an engine


class CopyEngine:
    """``engines`` FIFO servers for one copy direction."""

    def __init__(self, env: Environment, engines: int) -> None:
        self.env = env
        self.free = engines
        self.waiting: deque[CopyJob] = deque()

    def copy(self, duration_ms: float, then: Callable[[], None]) -> CopyJob:
        """Queue a copy; ``then`` runs when it ends. Returns a handle for ``cancel``."""
        job = CopyJob(duration_ms, then)
        if self.free:
            self.free -= 1
            self._run(job)
        else:
            self.waiting.append(job)
        return job

    def _run(self, job: CopyJob) -> None:
        job.due = Due(self.env, job.duration_ms, job, self._done)

    def _start_next(self) -> None:
        self.free += 1
        if self.waiting:
            self.free -= 1
            self._run(self.waiting.popleft())

    def _done(self, event: Due) -> None:
        self._start_next()
        event.payload.then()

    def cancel(self, job: CopyJob) -> None:
        """Withdraw a copy, whether it still waits for an engine or already runs on one."""
        if job.due is not None:  # running (it may have started from the queue after it was handed out)
            cancel(job.due)
            self._start_next()
        else:
            for index, queued in enumerate(self.waiting):
                if queued is job:  # by identity: equal durations must not match another call's copy
                    del self.waiting[index]
                    break


class StagedExecutor(Executor):
    """Runs calls for one node through load → copy in → compute → copy out."""

    def __init__(
        self,
        *,
        env: Environment,
        device: DeviceSpec | None,
        h2d_ms: Callable[[int], float] | None,
        d2h_ms: Callable[[int], float] | None,
        memory: ModelMemory | None,
        class_models: Sequence[str | None],
        load_ms: Callable[[str], float],
        slowdown_factors: Sequence[float] | str = (1.0,),
    ) -> None:
        super().__init__(env)
        self.device = device
        self.h2d_ms = h2d_ms
        self.d2h_ms = d2h_ms
        self.h2d = CopyEngine(env, device.copy_engines) if h2d_ms is not None else None
        self.d2h = CopyEngine(env, device.copy_engines) if d2h_ms is not None else None
        self.memory = memory
        self.class_models = list(class_models)
        self.load_ms = load_ms
        self.processor_sharing = slowdown_factors == "processor_sharing"  # f(k) = k
        self.factors = [1.0] if self.processor_sharing else list(slowdown_factors)
        self.shares_compute = self.processor_sharing or any(factor != 1.0 for factor in self.factors)
        self.computing: dict[Execution, None] = {}  # calls in their compute stage, in start order
        self._loading: dict[str, list[Callable[[], None]]] = {}
        self._load_events: dict[str, Due] = {}
        self._blocked_loads: deque[str] = deque()

    def slowdown(self, computing: int) -> float:
        """Compute-time multiplier while ``computing`` calls compute at once."""
        if self.processor_sharing:
            return float(max(computing, 1))
        return self.factors[min(computing, len(self.factors)) - 1] if computing else 1.0

    # compute: while n calls compute at once each progresses at 1 / slowdown(n) of its solo speed

    def begin_compute(self, execution: "Execution") -> None:
        self._reschedule(len(self.computing) + 1)
        self.computing[execution] = None
        execution.remaining_ms = execution.compute_ms
        execution.progress_since_ms = self.env.now
        execution.handle = Due(self.env, execution.compute_ms * self.slowdown(len(self.computing)), None, execution._computed)

    def end_compute(self, execution: "Execution") -> None:
        self._reschedule(len(self.computing) - 1, leaving=execution)
        del self.computing[execution]

    def _reschedule(self, computing_next: int, leaving: "Execution | None" = None) -> None:
        """The number computing changes to ``computing_next``: re-time every call that goes on computing."""
        before, after = self.slowdown(len(self.computing)), self.slowdown(computing_next)
        if not self.shares_compute or before == after:
            return
        now_ms = self.env.now
        for execution in self.computing:
            if execution is leaving:
                continue
            execution.remaining_ms -= (now_ms - execution.progress_since_ms) / before
            execution.progress_since_ms = now_ms
            cancel(execution.handle)
            execution.handle = Due(self.env, max(execution.remaining_ms, 0.0) * after, None, execution._computed)

    def start(self, batch: list[Request], compute_ms: float) -> "Execution":
        """Run one call of ``batch`` whose compute alone takes ``compute_ms``; ``on_done`` hears of its end."""
        execution = Execution(self, batch, compute_ms)
        execution.begin()
        return execution

    def cancel(self, execution: "Execution") -> list[Request]:
        """Stop a call wherever it is (node failure); its requests are returned."""
        return execution.cancel()

    # model memory: one load per model at a time; others needing it wait for that load

    def acquire_model(self, model: str, then: Callable[[], None]) -> None:
        memory = self.memory
        if memory.is_resident(model):
            memory.in_use[model] = memory.in_use.get(model, 0) + 1
            then()
            return
        waiters = self._loading.setdefault(model, [])
        waiters.append(then)
        if len(waiters) == 1:
            self._try_load(model)

    def _try_load(self, model: str) -> None:
        if not self.memory.make_room(model):
            self._blocked_loads.append(model)
            return
        self.memory.loading[model] = None
        self._load_events[model] = Due(self.env, self.load_ms(model), (model, self.env.now), self._loaded)

    def _loaded(self, event: Due) -> None:
        model, started_ms = event.payload
        self.memory.load_starts_ms.append(started_ms)  # a load counts once done: one a failure cancels does not
        del self._load_events[model]
        memory = self.memory
        del memory.loading[model]
        memory.resident[model] = None
        for then in self._loading.pop(model, []):
            memory.in_use[model] = memory.in_use.get(model, 0) + 1
            then()

    def release_model(self, model: str) -> None:
        self.memory.in_use[model] -= 1
        if self._blocked_loads:
            self._try_load(self._blocked_loads.popleft())

    def fail(self) -> None:
        """The node went down: its loaded models are lost and loads in progress abandoned, so
        the next use of each model after recovery pays a cold load again. Call it after
        cancelling the node's executions (they give their models back first)."""
        if self.memory is not None:
            self.memory.resident.clear()
            self.memory.loading.clear()
            self.memory.in_use.clear()
        for event in self._load_events.values():
            cancel(event)
        self._load_events.clear()
        self._loading.clear()  # only cancelled executions wait there now
        self._blocked_loads.clear()


class Execution:
    """One call's progress through the stages; ``cancel`` stops it (node failure)."""

    def __init__(self, executor: StagedExecutor, batch: list[Request], compute_ms: float) -> None:
        self.executor = executor
        self.batch = batch
        self.compute_ms = compute_ms
        self.model = executor.class_models[batch[0].class_index] if executor.memory else None
        self.handle = None
        self.engine: CopyEngine | None = None
        self.computing = False
        self.cancelled = False
        self.remaining_ms = compute_ms  # solo compute time still to do
        self.progress_since_ms = 0.0
        self.load_ms = self.copy_ms = 0.0
        self._stage_start_ms = executor.env.now

    def _now(self) -> float:
        return self.executor.env.now

    def begin(self) -> None:
        if self.model is not None:
            self.executor.acquire_model(self.model, self._after_load)
        else:
            self._after_load()

    def _after_load(self) -> None:
        if self.cancelled:  # the node failed while this call waited for its model
            if self.model is not None:
                self.executor.release_model(self.model)
            return
        self.load_ms = self._now() - self._stage_start_ms
        self._copy(self.executor.h2d, self.executor.h2d_ms, self._compute)

    def _copy(self, engine: CopyEngine | None, duration: Callable[[int], float] | None, then) -> None:
        if engine is None:
            then()
            return
        started_ms = self._now()

        def copied() -> None:
            self.copy_ms += self._now() - started_ms
            then()

        self.engine = engine
        self.handle = engine.copy(duration(len(self.batch)), copied)

    def _compute(self) -> None:
        self.computing = True
        self.engine = None
        self.executor.begin_compute(self)

    def _computed(self, _event: Due) -> None:
        self.computing = False
        self.executor.end_compute(self)
        self._copy(self.executor.d2h, self.executor.d2h_ms, self._done)

    def _done(self) -> None:
        if self.model is not None:
            self.executor.release_model(self.model)
        now_ms = self._now()
        for request in self.batch:
            request.service_ms = now_ms - request.start_ms
            request.load_ms = self.load_ms
            request.copy_ms = self.copy_ms
        self.executor.on_done(self, self.batch)

    def cancel(self) -> list[Request]:
        """Stop wherever the call is; its requests are returned to be retried or failed."""
        self.cancelled = True
        if self.engine is not None and self.handle is not None:
            self.engine.cancel(self.handle)
        elif isinstance(self.handle, Due):
            cancel(self.handle)
        if self.computing:
            self.executor.end_compute(self)
        if self.model is not None and self.handle is not None:
            self.executor.release_model(self.model)
        return self.batch
