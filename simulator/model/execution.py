"""One call on a worker, in stages: model load (on a model-cache miss), host-to-device copy,
compute, device-to-host copy.

Copies run on the node's copy engines (one FIFO line per direction, shared by its workers), so
one worker's copy overlaps another's compute, as on a GPU with separate copy streams. Compute
slows down when several workers compute at once on the device (from the profile's concurrency
runs). Used only by nodes that declare a ``device`` or a ``model_cache``; plain nodes serve a
call as a single event.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import simpy
from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt

from simulator.errors import ScenarioError
from simulator.model.events import Due
from simulator.model.request import Request
from simulator.service import SERVICE_MODELS

ServiceConfig = SERVICE_MODELS.config_type()


class ProfileSlowdown(BaseModel):
    """Slowdown factors measured by a profile bundle's concurrent runs: the mean time of a call at
    batch 1 while k workers share the device, over the mean time alone (interpolated between the
    measured k, the last one held beyond)."""

    model_config = ConfigDict(extra="forbid")
    bundle: str = Field(description="profile bundle directory, relative to the scenario file")
    family: str
    variant: str = "fp32"
    device: Literal["cpu", "cuda"] = "cpu"
    threads: PositiveInt | None = None
    stage: Literal["compute", "end_to_end"] = "compute"

    def factors(self, base_dir: Path) -> list[float]:
        from simulator.service.profile_backed import ProfileBacked

        def mean_ms(concurrency: int) -> float:
            config = ProfileBacked.Config(distribution="profile", concurrency=concurrency, **self.model_dump())
            return ProfileBacked(config, base_dir).mean_ms(1)

        alone = ProfileBacked(ProfileBacked.Config(distribution="profile", **self.model_dump()), base_dir)
        samples = alone.bundle.samples
        levels = sorted(
            int(k) for k in samples.loc[
                (samples["mode"] == "concurrent") & (samples["family"] == self.family)
                & (samples["variant"] == self.variant) & (samples["device"] == self.device),
                "concurrency",
            ].unique()
        )
        if not levels:
            raise ScenarioError(
                f"device.concurrency_slowdown: bundle {self.bundle} has no concurrent runs of {self.family}/{self.variant}"
            )
        measured = {1: 1.0} | {k: mean_ms(k) / alone.mean_ms(1) for k in levels}
        known = sorted(measured)
        return [float(np.interp(k, known, [measured[n] for n in known])) for k in range(1, known[-1] + 1)]


class DeviceSpec(BaseModel):
    """An accelerator: copy stages around compute, and slowdown under concurrent compute."""

    model_config = ConfigDict(extra="forbid")
    h2d: ServiceConfig = Field(description="host-to-device copy time per call (a service model; batch-size aware)")
    d2h: ServiceConfig = Field(description="device-to-host copy time per call (a service model; batch-size aware)")
    copy_engines: PositiveInt = Field(1, description="copies in flight at once, per direction")
    concurrency_slowdown: list[PositiveFloat] | ProfileSlowdown = Field(
        default_factory=lambda: [1.0],
        description="compute-time multiplier with 1, 2, ... workers computing at once (last value holds "
        "beyond), or a profile bundle whose concurrent runs measured it",
    )

    def slowdown_factors(self, base_dir: Path) -> list[float]:
        slowdown = self.concurrency_slowdown
        factors = slowdown.factors(base_dir) if isinstance(slowdown, ProfileSlowdown) else list(slowdown)
        if not factors:
            raise ScenarioError("device.concurrency_slowdown: give at least one factor (1.0 for one worker)")
        return factors


class ModelCacheSpec(BaseModel):
    """Models held in node memory; a class whose model is not resident pays a cold load."""

    model_config = ConfigDict(extra="forbid")
    memory_mb: PositiveFloat


class ModelSpec(BaseModel):
    """A model that classes name: its memory footprint and its cold-load time from disk."""

    model_config = ConfigDict(extra="forbid")
    size_mb: PositiveFloat
    load: ServiceConfig = Field(description="time to load the model from disk, in ms (a service model)")


class CopyJob:
    """One queued or running copy; the handle ``CopyEngine.cancel`` takes."""

    __slots__ = ("duration_ms", "then", "due")

    def __init__(self, duration_ms: float, then: Callable[[], None]) -> None:
        self.duration_ms = duration_ms
        self.then = then
        self.due: Due | None = None  # set once the copy runs on an engine


class CopyEngine:
    """``engines`` FIFO servers for one copy direction."""

    def __init__(self, env: simpy.Environment, engines: int) -> None:
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
        event._value.then()

    def cancel(self, job: CopyJob) -> None:
        """Withdraw a copy, whether it still waits for an engine or already runs on one."""
        if job.due is not None:  # running (it may have started from the queue after it was handed out)
            job.due.callbacks.clear()
            self._start_next()
        else:
            for index, queued in enumerate(self.waiting):
                if queued is job:  # by identity: equal durations must not match another call's copy
                    del self.waiting[index]
                    break


class ModelMemory:
    """Resident models (LRU order) within a memory budget; loads evict idle models first."""

    def __init__(self, memory_mb: float, sizes_mb: dict[str, float]) -> None:
        self.memory_mb = memory_mb
        self.sizes_mb = sizes_mb
        self.resident: OrderedDict[str, None] = OrderedDict()
        self.loading: dict[str, None] = {}  # memory is taken when a load starts, not when it ends
        self.in_use: dict[str, int] = {}
        self.load_starts_ms: list[float] = []  # when each cold load began

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


class StagedExecutor:
    """Runs calls for one node through load → copy in → compute → copy out."""

    def __init__(
        self,
        env: simpy.Environment,
        device: DeviceSpec | None,
        h2d_ms: Callable[[int], float] | None,
        d2h_ms: Callable[[int], float] | None,
        memory: ModelMemory | None,
        class_models: Sequence[str | None],
        load_ms: Callable[[str], float],
        slowdown_factors: Sequence[float] = (1.0,),
    ) -> None:
        self.env = env
        self.device = device
        self.h2d_ms = h2d_ms
        self.d2h_ms = d2h_ms
        self.h2d = CopyEngine(env, device.copy_engines) if device else None
        self.d2h = CopyEngine(env, device.copy_engines) if device else None
        self.memory = memory
        self.class_models = list(class_models)
        self.load_ms = load_ms
        self.factors = list(slowdown_factors) if slowdown_factors else [1.0]
        self.shares_compute = any(factor != 1.0 for factor in self.factors)
        self.computing: dict[Execution, None] = {}  # calls in their compute stage, in start order
        self._loading: dict[str, list[Callable[[], None]]] = {}
        self._load_events: dict[str, Due] = {}
        self._blocked_loads: deque[str] = deque()

    def slowdown(self, computing: int) -> float:
        """Compute-time multiplier while ``computing`` calls compute at once."""
        return self.factors[min(computing, len(self.factors)) - 1] if computing else 1.0

    # compute: while n calls compute at once each progresses at 1 / slowdown(n) of its solo speed

    def begin_compute(self, execution: "Execution") -> None:
        self._reschedule(len(self.computing) + 1)
        self.computing[execution] = None
        execution.remaining_ms = execution.compute_ms
        execution.progress_since_ms = self.env._now
        execution.handle = Due(self.env, execution.compute_ms * self.slowdown(len(self.computing)), None, execution._computed)

    def end_compute(self, execution: "Execution") -> None:
        self._reschedule(len(self.computing) - 1, leaving=execution)
        del self.computing[execution]

    def _reschedule(self, computing_next: int, leaving: "Execution | None" = None) -> None:
        """The number computing changes to ``computing_next``: re-time every call that goes on computing."""
        before, after = self.slowdown(len(self.computing)), self.slowdown(computing_next)
        if not self.shares_compute or before == after:
            return
        now_ms = self.env._now
        for execution in self.computing:
            if execution is leaving:
                continue
            execution.remaining_ms -= (now_ms - execution.progress_since_ms) / before
            execution.progress_since_ms = now_ms
            execution.handle.callbacks.clear()
            execution.handle = Due(self.env, max(execution.remaining_ms, 0.0) * after, None, execution._computed)

    def start(self, batch: list[Request], compute_ms: float, finish: Callable[["Execution"], None]) -> "Execution":
        execution = Execution(self, batch, compute_ms, finish)
        execution.begin()
        return execution

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
        self.memory.load_starts_ms.append(self.env._now)
        self.memory.loading[model] = None
        self._load_events[model] = Due(self.env, self.load_ms(model), model, self._loaded)

    def _loaded(self, event: Due) -> None:
        model = event._value
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
            event.callbacks.clear()
        self._load_events.clear()
        self._loading.clear()  # only cancelled executions wait there now
        self._blocked_loads.clear()


class Execution:
    """One call's progress through the stages; ``cancel`` stops it (node failure)."""

    def __init__(self, executor: StagedExecutor, batch: list[Request], compute_ms: float, finish) -> None:
        self.executor = executor
        self.batch = batch
        self.compute_ms = compute_ms
        self.finish = finish
        self.model = executor.class_models[batch[0].class_index] if executor.memory else None
        self.handle = None
        self.engine: CopyEngine | None = None
        self.computing = False
        self.cancelled = False
        self.remaining_ms = compute_ms  # solo compute time still to do
        self.progress_since_ms = 0.0
        self.load_ms = self.copy_ms = 0.0
        self._stage_start_ms = executor.env._now

    def _now(self) -> float:
        return self.executor.env._now

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
        self.finish(self)

    def cancel(self) -> list[Request]:
        """Stop wherever the call is; its requests are returned to be retried or failed."""
        self.cancelled = True
        if self.engine is not None and self.handle is not None:
            self.engine.cancel(self.handle)
        elif isinstance(self.handle, Due):
            self.handle.callbacks.clear()
        if self.computing:
            self.executor.end_compute(self)
        if self.model is not None and self.handle is not None:
            self.executor.release_model(self.model)
        return self.batch
