"""Points: one configuration at one load and run length, simulated on an executor and stored as it finishes.

The search is written as coroutines (generators) that yield the points they need and receive the
results; :meth:`Evaluator.drive` runs many of them in lockstep *waves*: it gathers every point the
coroutines ask for, looks each up in the results store, simulates the missing ones on the executor
in parallel, stores each as it finishes, and hands every coroutine its results. Decisions are taken
on whole waves only, so the answer never depends on which worker finished first.
"""

from __future__ import annotations

import importlib.metadata
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from simulator.planning.load import at_rate
from simulator.planning.space import Configuration, Space
from simulator.planning.store import ResultStore, point_key
from simulator.runner.api import run
from simulator.runner.executors import Executor
from simulator.scenario.loader import scenario_from_dict
from simulator.scenario.schema import Scenario

T = TypeVar("T")
# yields the points it needs and receives their results; or yields an int, the most points it may still ask for (progress)
Search = Generator["list[Point] | int", "list[dict[str, Any]] | None", T]
ProgressCallback = Callable[[int, int], None]  # (points done, an upper bound on all the points the plan will do)
BREAKDOWN = ("network_ms", "cache_ms", "queue_ms", "batch_wait_ms", "load_ms", "copy_ms", "compute_ms")
CDF_LEVELS = np.unique(np.concatenate([np.linspace(0, 0.99, 100), 1 - np.logspace(-2, -5, 31)]))


@dataclass(frozen=True)
class Point:
    """A configuration simulated at ``rate_per_s`` for ``replications`` × ``requests``; ``detail`` keeps records and time series."""

    config: Configuration
    rate_per_s: float
    replications: int
    requests: int
    detail: bool = False
    attempt: int = 0  # k > 0: the k-th rerun of an inconclusive verdict, on streams of its own


def attempt_seed(seed: int, attempt: int) -> int:
    """The seed of a verdict's ``attempt``: the plan's own first, then independent ones, so that a rerun judges fresh
    draws instead of the same ones again plus more (configurations keep common random numbers attempt by attempt)."""
    if attempt == 0:
        return seed
    return int(np.random.SeedSequence(seed, spawn_key=(attempt,)).generate_state(1, np.uint64)[0] >> 1)


def evaluate_task(task: dict[str, Any]) -> dict[str, Any]:
    """Simulate one point wherever the executor runs it: status, summary, wall seconds (and the reduced detail)."""
    scenario = scenario_from_dict(task["scenario"], source=task["source"], base_dir=Path(task["base_dir"]))
    if scenario.run.precision is not None:  # the plan sizes its points itself (replications and requests per point)
        scenario = scenario.replace("run.precision", None)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="latsim-point-") as scratch:
        records = Path(scratch) / "requests.parquet" if task["detail"] else None
        result = run(
            scenario, seed=task["seed"], replications=task["replications"], requests=task["requests"],
            records_path=records, monitor=task["detail"], on_unstable="return",
        )
        outcome: dict[str, Any] = {"status": result.status, "message": result.message, "summary": result.summary}
        if task["detail"] and result.ok:
            outcome["detail"] = _detail(records, result.timeseries, [c.name for c in scenario.workload.classes])
    outcome["seconds"] = time.perf_counter() - started
    return outcome


def _detail(records: Path, timeseries: Any, classes: list[str]) -> dict[str, Any]:
    """What the report draws from a point's records: latency quantiles (CDF), mean latency parts, replication 0's series."""
    import pandas as pd

    columns = ["class", "measured", "final", "dropped", "latency_ms", "network_ms", "cache_ms", "wait_ms", "batch_wait_ms",
               "load_ms", "copy_ms", "compute_ms", "batch_size"]
    frame = pd.read_parquet(records, columns=columns)
    frame = frame[frame["measured"] & frame["final"] & (frame["dropped"].fillna("") == "")]  # served: no drop reason
    frame = frame.assign(queue_ms=frame["wait_ms"] - frame["batch_wait_ms"])
    scopes = {"all": frame, **{name: frame[frame["class"] == name] for name in classes}}
    cdf, breakdown = {}, {}
    for scope, rows in scopes.items():
        if len(rows) == 0:
            continue
        levels = CDF_LEVELS[CDF_LEVELS <= 1 - 1 / len(rows)]
        cdf[scope] = {"levels": levels.tolist(), "latency_ms": np.quantile(rows["latency_ms"].to_numpy(), levels).tolist()}
        breakdown[scope] = {part: float(rows[part].fillna(0).mean()) for part in BREAKDOWN}
    first = timeseries[timeseries["replication"] == 0]
    series_columns = ["window_start_s", "throughput_per_s", "latency_p50_ms", "latency_p99_ms"]
    series = {column: _nullable(first[column]) for column in series_columns}
    series["utilization"] = _nullable(first[[c for c in first.columns if c.startswith("utilization.")]].mean(axis=1))
    return {"cdf": cdf, "breakdown_ms": breakdown, "timeseries": series, "requests": int(len(frame))}


def _nullable(values: Any) -> list[float | None]:
    """A column as JSON-ready numbers: NaN (a window without requests) becomes None."""
    return [None if value != value else float(value) for value in values.astype(float)]


class Evaluator:
    """Evaluates points through the results store and an executor, counting what was simulated and what was reused."""

    def __init__(self, base: Scenario, space: Space, seed: int, store: ResultStore, executor: Executor,
                 progress: ProgressCallback | None = None) -> None:
        self.base = base
        self.space = space
        self.seed = seed
        self.store = store
        self.executor = executor
        self.progress = progress
        self.simulated = 0
        self.reused = 0
        self.in_flight = 0  # points being simulated now
        self.running: dict[Any, int] = {}  # each running search's bound on the points it may still ask for
        self.later = 0  # a bound on the points of the phases not started yet (set by the planner)
        self.total: int | None = None  # the bound last reported: it only ever falls
        self.point_seconds = 0.0  # simulation wall time of every point used, stored ones included
        self.bundles = {name: info.sha256 for name, info in space.bundles.items()}
        self._scenarios: dict[tuple[Configuration, float], Scenario] = {}

    def scenario(self, config: Configuration, rate_per_s: float) -> Scenario:
        """The validated scenario of a configuration at a load (made once)."""
        key = (config, rate_per_s)
        if key not in self._scenarios:
            self._scenarios[key] = self.space.apply(at_rate(self.base, rate_per_s), config)
        return self._scenarios[key]

    def parameters(self, point: Point) -> dict[str, Any]:
        """Everything a point's result depends on: its whole scenario, seed, length, bundle contents, latsim version."""
        return {
            "scenario": self.scenario(point.config, point.rate_per_s).model_dump(mode="json"),
            "seed": attempt_seed(self.seed, point.attempt), "replications": point.replications, "requests": point.requests,
            "detail": point.detail, "bundles": self.bundles, "latsim": latsim_version(),
        }

    def key(self, point: Point) -> str:
        return point_key(self.parameters(point))

    def evaluate(self, points: list[Point]) -> list[dict[str, Any]]:
        """Each point's result, from the store or simulated now (in parallel), stored the moment it finishes."""
        keys = [self.key(point) for point in points]
        results: dict[str, dict[str, Any]] = {}
        missing: dict[str, Point] = {}
        for key, point in zip(keys, points):
            if key in results or key in missing:
                continue
            stored = self.store.get(key)
            if stored is None:
                missing[key] = point
            else:
                results[key], seconds = stored
                self.point_seconds += seconds
                self.reused += 1
        self.in_flight = len(missing)
        self._report()
        order = list(missing)
        tasks = [self._task(missing[key]) for key in order]
        for index, outcome in self.executor.map_unordered(evaluate_task, tasks):
            key = order[index]
            seconds = outcome.pop("seconds")
            self.store.put(key, self.parameters(missing[key]), outcome, seconds)
            results[key] = outcome
            self.point_seconds += seconds
            self.simulated += 1
            self.in_flight -= 1
            self._report()
        return [results[key] for key in keys]

    def _task(self, point: Point) -> dict[str, Any]:
        scenario = self.scenario(point.config, point.rate_per_s)
        return {
            "scenario": scenario.model_dump(mode="json"), "source": scenario.source, "base_dir": str(scenario.base_dir),
            "seed": attempt_seed(self.seed, point.attempt), "replications": point.replications, "requests": point.requests,
            "detail": point.detail,
        }

    def _report(self) -> None:
        """Points done, and the bound on every point of the plan: done, those being simulated, what running searches may
        still ask, what the later phases may ask. It never rises (each bound is sound and each new one knows more), and
        never falls below done."""
        done = self.simulated + self.reused
        bound = done + self.in_flight + sum(self.running.values()) + self.later
        self.total = max(done, bound if self.total is None else min(self.total, bound))
        if self.progress is not None:
            self.progress(done, self.total)

    def finish(self) -> None:
        """The search is over: nothing more will be asked, so the bound is what was done (progress ends at 100 %)."""
        self.running, self.later = {}, 0
        self._report()

    def drive(self, searches: dict[Any, Search[T]], bounds: dict[Any, int] | None = None, later: int = 0) -> dict[Any, T]:
        """Run search coroutines to completion in waves; returns each one's result by its name. For progress, ``bounds``:
        the most points each search may ask for, ``later``: the most the phases after this one may ask for (without
        bounds, as a caller that shows no progress gives, the reported total is no bound)."""
        finished: dict[Any, T] = {}
        asking: dict[Any, list[Point]] = {}
        self.running, self.later = dict(bounds) if bounds is not None else dict.fromkeys(searches, 0), later
        for name, search in searches.items():
            self._advance(name, search, None, asking, finished)
        while asking:
            for name, points in asking.items():
                self.running[name] -= len(points)
            wanted = [point for points in asking.values() for point in points]
            results = iter(self.evaluate(wanted))
            answers = {name: [next(results) for _ in points] for name, points in asking.items()}
            asking = {}
            for name, answer in answers.items():
                self._advance(name, searches[name], answer, asking, finished)
            self._report()
        self.running = {}
        return finished

    def _advance(self, name: Any, search: Search[T], answer: list[dict[str, Any]] | None, asking: dict, finished: dict) -> None:
        """Send a coroutine its answer (None: start it) and note what it asks next (taking the bounds it reports on the
        way), or its result."""
        try:
            wanted = search.send(answer) if answer is not None else next(search)
            while isinstance(wanted, int):
                self.running[name] = min(self.running[name], wanted)
                wanted = next(search)
            asking[name] = wanted
        except StopIteration as stop:
            finished[name] = stop.value
            self.running.pop(name, None)


def latsim_version() -> str:
    """The installed latsim's version (part of every point's key: a new latsim never reads an old answer)."""
    try:
        return importlib.metadata.version("latsim")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def versions() -> dict[str, str]:
    """Versions of latsim and of the libraries its numbers depend on, for the report's inputs."""
    found = {"latsim": latsim_version(), "python": sys.version.split()[0], "platform": platform.platform()}
    for package in ("numpy", "scipy", "pandas", "simpy", "pydantic", "dask", "distributed"):
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found
