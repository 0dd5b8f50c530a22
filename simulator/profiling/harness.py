"""The timing harness: per-call latency samples of a :class:`Servable`, in tidy rows.

Every call is timed by stage. On a CPU: ``overhead`` (decoding the payload into tensors and the
output into Python, around the model), ``compute`` (the forward call) and ``end_to_end``. On a GPU
the host-to-device copy, compute and device-to-host copy are timed with CUDA events on the
worker's own stream (``h2d``, ``compute``, ``d2h``), the host work as ``overhead``, and
``end_to_end`` with the host clock. The same code runs on either device; it is chosen at run time.

Modes (each a column value), because service time is a process, not only a distribution:

- ``sweep``: back-to-back calls for every batch size x intra-op thread count;
- ``sequence``: one long back-to-back run in order (drift, slow and fast stretches);
- ``isolated``: calls separated by idle gaps (what a sparse arrival stream sees);
- ``concurrent``: k workers (threads; CUDA streams on a GPU) calling the same model at once;
- ``cold``: load the model from disk, then its first call (``load``, ``first_call``, ``end_to_end``).
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
import torch

from simulator.profiling.errors import ProfilingError
from simulator.profiling.servable import Payload, Servable, to_device

CPU_STAGES = ("overhead", "compute", "end_to_end")
CUDA_STAGES = ("overhead", "h2d", "compute", "d2h", "end_to_end")
COLD_STAGES = ("load", "first_call", "end_to_end")
PAYLOAD_POOL = 8  # distinct payloads cycled through, so no call sees exactly the previous input


def default_threads() -> int:
    """The intra-op thread count torch would use by itself (one per core)."""
    return torch.get_num_threads()


@dataclass(frozen=True)
class HarnessSettings:
    """What to measure and how long; ``quick()`` is a short run with the same structure."""

    batch_sizes: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64)
    threads: tuple[int, ...] = field(default_factory=lambda: tuple(sorted({1, default_threads()})))
    concurrency: tuple[int, ...] = (1, 2, 4)
    concurrency_batch_sizes: tuple[int, ...] = (1,)
    serving_threads: int = field(default_factory=default_threads)
    warmup_calls: int = 5
    min_samples: int = 5
    max_samples: int = 200
    cell_budget_s: float = 0.5
    sequence_calls: int = 1000
    sequence_budget_s: float = 3.0
    isolated_calls: int = 30
    isolated_gap_ms: float = 20.0
    cold_repeats: int = 3
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("batch_sizes", "threads", "concurrency", "concurrency_batch_sizes"):
            values = getattr(self, name)
            if not values or min(values) < 1:
                raise ProfilingError(f"harness {name} must be a non-empty list of positive integers, not {values}")
        if not 1 <= self.min_samples <= self.max_samples:
            raise ProfilingError(
                f"harness needs 1 <= min_samples <= max_samples ({self.min_samples}, {self.max_samples})"
            )

    @classmethod
    def quick(cls, **overrides: Any) -> HarnessSettings:
        short = cls(
            batch_sizes=(1, 8, 32),
            threads=(default_threads(),),
            concurrency=(1, 2),
            warmup_calls=2,
            min_samples=5,
            max_samples=30,
            cell_budget_s=0.1,
            sequence_calls=100,
            sequence_budget_s=0.5,
            isolated_calls=8,
            isolated_gap_ms=5.0,
            cold_repeats=1,
        )
        return replace(short, **overrides)

    def describe(self) -> dict[str, Any]:
        return {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(self).items()}


@dataclass
class CellFailure:
    """A cell that could not run (e.g. a user model exported with a fixed batch size)."""

    family: str
    variant: str
    device: str
    batch_size: int
    mode: str
    reason: str


@contextmanager
def intra_op_threads(count: int) -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


class _CpuCall:
    """Times one request on the CPU: overhead around the forward call, the call, end to end."""

    stages = CPU_STAGES

    def __init__(self, servable: Servable, module: Callable[..., Any]) -> None:
        self.prepare = servable.codec.prepare
        self.postprocess = servable.codec.postprocess
        self.dtype = servable.dtype
        self.module = module

    def __call__(self, payload: Payload) -> tuple[int, tuple[float, ...]]:
        clock = time.perf_counter_ns
        t0 = clock()
        inputs = self.prepare(payload, self.dtype)
        t1 = clock()
        output = self.module(*inputs)
        t2 = clock()
        self.postprocess(output)
        t3 = clock()
        return t0, ((t1 - t0 + t3 - t2) / 1e6, (t2 - t1) / 1e6, (t3 - t0) / 1e6)


class _CudaCall:
    """Times one request on a GPU on its own stream: host overhead, H2D, compute, D2H (CUDA events)."""

    stages = CUDA_STAGES

    def __init__(self, servable: Servable, module: Callable[..., Any]) -> None:
        self.prepare = servable.codec.prepare
        self.postprocess = servable.codec.postprocess
        self.dtype = servable.dtype
        self.device = servable.device
        self.module = module
        self.stream = torch.cuda.Stream(device=self.device)
        self.events = [torch.cuda.Event(enable_timing=True) for _ in range(4)]

    def __call__(self, payload: Payload) -> tuple[int, tuple[float, ...]]:
        clock = time.perf_counter_ns
        before_copy, before_compute, after_compute, after_copy = self.events
        t0 = clock()
        with torch.cuda.stream(self.stream):
            host_inputs = self.prepare(payload, self.dtype)
            t1 = clock()
            before_copy.record(self.stream)
            inputs = tuple(x.to(self.device) for x in host_inputs)
            before_compute.record(self.stream)
            output = self.module(*inputs)
            after_compute.record(self.stream)
            host_output = to_device(output, torch.device("cpu"))
            after_copy.record(self.stream)
            after_copy.synchronize()
        t2 = clock()
        self.postprocess(host_output)
        t3 = clock()
        return t0, (
            (t1 - t0 + t3 - t2) / 1e6,
            before_copy.elapsed_time(before_compute),
            before_compute.elapsed_time(after_compute),
            after_compute.elapsed_time(after_copy),
            (t3 - t0) / 1e6,
        )


def _call_timer(servable: Servable, module: Callable[..., Any] | None = None) -> _CpuCall | _CudaCall:
    timer = _CudaCall if servable.device.type == "cuda" else _CpuCall
    return timer(servable, servable.module if module is None else module)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class _Run:
    """Calls of one cell: start times (ns, perf counter), stage latencies (ms) and worker ids."""

    starts_ns: list[int] = field(default_factory=list)
    latencies_ms: list[tuple[float, ...]] = field(default_factory=list)
    workers: list[int] = field(default_factory=list)

    def record(self, started_ns: int, latencies_ms: tuple[float, ...], worker: int = 0) -> None:
        self.starts_ns.append(started_ns)
        self.latencies_ms.append(latencies_ms)
        self.workers.append(worker)

    def __len__(self) -> int:
        return len(self.starts_ns)

    @classmethod
    def merged(cls, runs: list[_Run]) -> _Run:
        return cls(
            [t for run in runs for t in run.starts_ns],
            [x for run in runs for x in run.latencies_ms],
            [w for run in runs for w in run.workers],
        )


class _Samples:
    """Collects tidy rows (one per call and stage) as column arrays, calls in start order."""

    def __init__(self, servable: Servable, origin_ns: int) -> None:
        self.constant = {
            "family": servable.family,
            "variant": servable.variant,
            "device": servable.device.type,
            "dtype": servable.dtype_name,
        }
        self.origin_ns = origin_ns
        self.frames: list[pd.DataFrame] = []

    def add(self, stages: tuple[str, ...], run: _Run, **cell: Any) -> None:
        calls = len(run)
        if calls == 0:
            return
        order = np.argsort(run.starts_ns, kind="stable")
        starts = np.asarray(run.starts_ns, dtype=np.int64)[order] - self.origin_ns
        values = np.asarray(run.latencies_ms, dtype=np.float64)[order]
        workers = np.asarray(run.workers, dtype=np.int64)[order]
        self.frames.append(
            pd.DataFrame(
                {
                    **self.constant,
                    **cell,
                    "stage": np.repeat(np.array(stages), calls),
                    "worker": np.tile(workers, len(stages)),
                    "sample_index": np.tile(np.arange(calls), len(stages)),
                    "timestamp_ns": np.tile(starts, len(stages)),
                    "latency_ms": values.T.reshape(-1),
                }
            )
        )

    def frame(self) -> pd.DataFrame:
        return pd.concat(self.frames, ignore_index=True) if self.frames else pd.DataFrame()


def _payload_pool(servable: Servable, batch_size: int, seed: int) -> list[Payload]:
    rng = np.random.default_rng([seed, batch_size])
    return [servable.codec.make_payload(batch_size, rng) for _ in range(PAYLOAD_POOL)]


def _back_to_back(
    call: Callable[[Payload], tuple[int, tuple[float, ...]]],
    payloads: list[Payload],
    warmup_calls: int,
    calls: range,
    budget_s: float,
    worker: int = 0,
    start: threading.Barrier | None = None,
) -> _Run:
    """Warm up, then call until ``calls.stop`` calls or the time budget, but at least ``calls.start``."""
    run = _Run()
    with torch.inference_mode():
        for index in range(warmup_calls):
            call(payloads[index % len(payloads)])
        if start is not None:
            start.wait()
        deadline = time.perf_counter_ns() + int(budget_s * 1e9)
        while len(run) < calls.stop and (len(run) < calls.start or time.perf_counter_ns() < deadline):
            run.record(*call(payloads[len(run) % len(payloads)]), worker)
    return run


class Harness:
    """Runs every mode of the settings on servables and returns their samples as one DataFrame."""

    def __init__(self, settings: HarnessSettings, advance: Callable[[str], None] | None = None) -> None:
        self.settings = settings
        self.advance = advance or (lambda description: None)
        self.origin_ns = time.perf_counter_ns()
        self.failures: list[CellFailure] = []

    def cells(self, servable: Servable) -> int:
        """How many progress steps ``measure`` takes for ``servable``."""
        s = self.settings
        concurrent = len([k for k in s.concurrency if k > 1]) * len(s.threads) * len(s.concurrency_batch_sizes)
        return len(s.batch_sizes) * len(s.threads) + concurrent + 2 + int(self._cold_measured(servable))

    def _cold_measured(self, servable: Servable) -> bool:
        return servable.cold_load is not None and self.settings.cold_repeats > 0

    def measure(self, servable: Servable) -> pd.DataFrame:
        samples = _Samples(servable, self.origin_ns)
        self._sweep(servable, samples)
        with intra_op_threads(self.settings.serving_threads):
            self._sequence(servable, samples)
            self._isolated(servable, samples)
            if self._cold_measured(servable):
                self._cold(servable, samples)
        self._concurrent(servable, samples)
        return samples.frame()

    def _step(self, servable: Servable, what: str) -> None:
        self.advance(f"{servable.family}/{servable.variant}: {what}")

    def _fails(self, servable: Servable, batch_size: int, mode: str) -> bool:
        """One trial call; a failure is recorded (with its reason) instead of aborting the run."""
        try:
            with torch.inference_mode():
                _call_timer(servable)(_payload_pool(servable, batch_size, self.settings.seed)[0])
        except Exception as error:  # an arbitrary user model may reject any input shape
            self.failures.append(
                CellFailure(servable.family, servable.variant, servable.device.type, batch_size, mode, str(error))
            )
            return True
        return False

    def _sweep(self, servable: Servable, samples: _Samples) -> None:
        s = self.settings
        call = _call_timer(servable)
        for threads in s.threads:
            with intra_op_threads(threads):
                for batch_size in s.batch_sizes:
                    self._step(servable, f"batch {batch_size}, {threads} threads")
                    if self._fails(servable, batch_size, "sweep"):
                        continue
                    payloads = _payload_pool(servable, batch_size, s.seed)
                    calls = range(s.min_samples, s.max_samples)
                    run = _back_to_back(call, payloads, s.warmup_calls, calls, s.cell_budget_s)
                    samples.add(call.stages, run, batch_size=batch_size, threads=threads, concurrency=1, mode="sweep")

    def _sequence(self, servable: Servable, samples: _Samples) -> None:
        s = self.settings
        self._step(servable, f"sequence of up to {s.sequence_calls} calls")
        if self._fails(servable, 1, "sequence"):
            return
        call = _call_timer(servable)
        calls = range(min(s.min_samples, s.sequence_calls), s.sequence_calls)
        run = _back_to_back(call, _payload_pool(servable, 1, s.seed), s.warmup_calls, calls, s.sequence_budget_s)
        samples.add(call.stages, run, batch_size=1, threads=s.serving_threads, concurrency=1, mode="sequence")

    def _isolated(self, servable: Servable, samples: _Samples) -> None:
        s = self.settings
        self._step(servable, f"{s.isolated_calls} isolated calls")
        if self._fails(servable, 1, "isolated"):
            return
        call = _call_timer(servable)
        payloads = _payload_pool(servable, 1, s.seed)
        run = _Run()
        with torch.inference_mode():
            for index in range(s.isolated_calls):
                time.sleep(s.isolated_gap_ms / 1000)
                run.record(*call(payloads[index % len(payloads)]))
        samples.add(call.stages, run, batch_size=1, threads=s.serving_threads, concurrency=1, mode="isolated")

    def _concurrent(self, servable: Servable, samples: _Samples) -> None:
        s = self.settings
        for threads in s.threads:
            with intra_op_threads(threads):
                for batch_size in s.concurrency_batch_sizes:
                    for workers in (k for k in s.concurrency if k > 1):
                        self._step(servable, f"{workers} concurrent workers, batch {batch_size}, {threads} threads")
                        if self._fails(servable, batch_size, "concurrent"):
                            continue
                        run, stages = self._concurrent_run(servable, workers, batch_size)
                        samples.add(
                            stages, run, batch_size=batch_size, threads=threads, concurrency=workers, mode="concurrent"
                        )

    def _concurrent_run(self, servable: Servable, workers: int, batch_size: int) -> tuple[_Run, tuple[str, ...]]:
        """``workers`` threads (each with its own CUDA stream on a GPU) start together and call back to back."""
        s = self.settings
        start = threading.Barrier(workers)
        calls = range(-(-s.min_samples // workers), max(-(-s.max_samples // workers), 1))
        timers = [_call_timer(servable) for _ in range(workers)]
        results: list[Any] = [None] * workers

        def work(worker: int) -> None:
            try:
                payloads = _payload_pool(servable, batch_size, s.seed + 1 + worker)
                results[worker] = _back_to_back(
                    timers[worker], payloads, s.warmup_calls, calls, s.cell_budget_s, worker, start
                )
            except BaseException as error:  # re-raised in the caller's thread below
                start.abort()
                results[worker] = error

        pool = [threading.Thread(target=work, args=(worker,), daemon=True) for worker in range(workers)]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            raise next((e for e in errors if not isinstance(e, threading.BrokenBarrierError)), errors[0])
        return _Run.merged(results), timers[0].stages

    def _cold(self, servable: Servable, samples: _Samples) -> None:
        s = self.settings
        self._step(servable, f"{s.cold_repeats} cold starts")
        payload = _payload_pool(servable, 1, s.seed)[0]
        run = _Run()
        for _ in range(s.cold_repeats):
            gc.collect()
            started = time.perf_counter_ns()
            module = servable.cold_load()  # type: ignore[misc]
            _synchronize(servable.device)
            load_ms = (time.perf_counter_ns() - started) / 1e6
            with torch.inference_mode():
                _, first = _call_timer(servable, module)(payload)
            run.record(started, (load_ms, first[-1], load_ms + first[-1]))
        samples.add(COLD_STAGES, run, batch_size=1, threads=s.serving_threads, concurrency=1, mode="cold")
