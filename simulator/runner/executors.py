"""Executors: one interface to run independent tasks in this process, in a local process pool, or on Dask.

A task is a picklable module-level function applied to one picklable argument. ``map_unordered``
yields ``(index, result)`` as tasks finish, so a caller that needs an order restores it from the
index (the planner decides only on whole waves, which keeps its answer independent of completion
order). Every task is deterministic in its argument, so a task rerun after its worker died gives
the same result: a pool whose worker process dies is restarted and its unfinished tasks are
submitted again; Dask reschedules the tasks of a lost worker itself (up to its ``allowed-failures``).
Dask is imported only when a Dask executor is made (``pip install 'dask[distributed]'``).
"""

from __future__ import annotations

import logging
import os
import struct
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Literal

from simulator.errors import LatsimError

ExecutorKind = Literal["inprocess", "processes", "dask"]
MAX_POOL_RESTARTS = 3  # a pool that breaks more often than this in one map is a crash, not bad luck


class ExecutorError(LatsimError):
    """An executor cannot be started or reached (no Dask installed, no scheduler at the address)."""


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the platform has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class Executor(ABC):
    """Runs tasks and yields ``(index, result)`` as they finish; a context manager that releases its workers."""

    workers: int = 1

    @abstractmethod
    def map_unordered(self, function: Callable[[Any], Any], arguments: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        """Apply ``function`` to every argument; yield each result with its argument's index, in completion order."""

    @abstractmethod
    def describe(self) -> str:
        """One line for progress and reports: which executor, how many workers."""

    def close(self) -> None:
        """Release workers (nothing to release by default)."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class InProcessExecutor(Executor):
    """Runs every task here, one after the other (debugging, tests, and machines with one core)."""

    def map_unordered(self, function: Callable[[Any], Any], arguments: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        for index, argument in enumerate(arguments):
            yield index, function(argument)

    def describe(self) -> str:
        return "in-process"


class ProcessPoolTaskExecutor(Executor):
    """A local pool of worker processes (default: one per available CPU); a dead worker's tasks are rerun."""

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers or available_cpus()
        self._pool: ProcessPoolExecutor | None = None

    def _fresh_pool(self) -> ProcessPoolExecutor:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = ProcessPoolExecutor(max_workers=self.workers)
        return self._pool

    def map_unordered(self, function: Callable[[Any], Any], arguments: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        pool = self._pool or self._fresh_pool()
        running: dict[Future, int] = {pool.submit(function, argument): index for index, argument in enumerate(arguments)}
        restarts = 0
        while running:
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            lost = []
            for future in finished:
                index = running.pop(future)
                try:
                    result = future.result()
                except BrokenProcessPool:
                    lost.append(index)
                    continue
                yield index, result
            if lost:  # a worker died (killed, out of memory): every task still in the pool is lost with it
                restarts += 1
                if restarts > MAX_POOL_RESTARTS:
                    raise ExecutorError(f"the process pool broke {restarts} times in one map (workers killed or out of memory)")
                lost += list(running.values())
                pool = self._fresh_pool()
                running = {pool.submit(function, arguments[index]): index for index in sorted(lost)}

    def describe(self) -> str:
        return f"local process pool ({self.workers} workers)"

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


class DaskExecutor(Executor):
    """Tasks on a Dask distributed cluster: an existing one (``scheduler`` address) or a LocalCluster of ``local_workers``."""

    def __init__(self, scheduler: str | None = None, local_workers: int | None = None) -> None:
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise ExecutorError("Dask is not installed: pip install 'dask[distributed]'") from None
        self._cluster = None
        try:
            if scheduler is not None:
                self._client = _connect(Client, _scheduler_address(scheduler))
            else:
                self._cluster = LocalCluster(
                    n_workers=local_workers or available_cpus(), threads_per_worker=1, processes=True,
                    dashboard_address=None, silence_logs=logging.ERROR,
                )
                self._client = Client(self._cluster)
        except (OSError, TimeoutError) as error:
            if self._cluster is not None:
                self._cluster.close()
            raise ExecutorError(f"cannot reach the Dask scheduler {scheduler or '(local)'}: {error}") from None
        self.scheduler = self._client.scheduler.address
        self.workers = max(1, len(self._client.scheduler_info(n_workers=-1)["workers"]))

    @property
    def client(self) -> Any:
        """The ``distributed.Client`` (for tests and callers that want to inspect the cluster)."""
        return self._client

    def map_unordered(self, function: Callable[[Any], Any], arguments: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        from distributed import as_completed

        futures = self._client.map(function, list(arguments), pure=False)
        index = {future.key: position for position, future in enumerate(futures)}
        for future, result in as_completed(futures, with_results=True):
            yield index[future.key], result
            future.release()

    def describe(self) -> str:
        where = "LocalCluster" if self._cluster is not None else "cluster"
        return f"Dask {where} at {self.scheduler} ({self.workers} workers)"

    def close(self) -> None:
        self._client.close()
        if self._cluster is not None:
            self._cluster.close()


PEER_ERRORS = (ValueError, MemoryError, TypeError, KeyError, IndexError, struct.error)  # what decoding a foreign peer's bytes raises


def _connect(client: type, address: str) -> Any:
    """A Dask ``Client`` of the scheduler at ``address``; a peer there that does not speak Dask's protocol (its bytes
    decode to nonsense, or announce frames of exabytes) is an ExecutorError naming the address."""
    try:
        return client(address, timeout="20s")
    except PEER_ERRORS as error:
        raise ExecutorError(
            f"the server at {address} does not answer as a Dask scheduler ({type(error).__name__}: {str(error)[:200]}); "
            "give the address of a Dask scheduler, e.g. tcp://10.0.0.5:8786"
        ) from None


def _scheduler_address(address: str) -> str:
    """``address`` if it reads as a Dask scheduler's (``tcp://host:port``, scheme optional); else an ExecutorError."""
    from distributed.comm.addressing import parse_address, parse_host_port
    from distributed.comm.registry import backends

    try:
        scheme, location = parse_address(address)
        if scheme not in backends:
            raise ValueError(f"unknown scheme {scheme!r}, one of {', '.join(sorted(backends))}")
        if scheme != "inproc" and not 0 < parse_host_port(location)[1] < 65536:
            raise ValueError("the port must be 1 to 65535")
    except ValueError as error:
        raise ExecutorError(f"scheduler address {address!r}: {error}; give one like tcp://10.0.0.5:8786") from None
    return address


def make_executor(kind: ExecutorKind = "processes", workers: int | None = None, scheduler: str | None = None) -> Executor:
    """The executor of that kind: ``workers`` processes (default all CPUs; Dask: LocalCluster workers), or a Dask scheduler address."""
    if kind == "inprocess":
        return InProcessExecutor()
    if kind == "processes":
        return ProcessPoolTaskExecutor(workers)
    if kind == "dask":
        return DaskExecutor(scheduler, workers)
    raise ValueError(f"unknown executor kind {kind!r}; one of inprocess, processes, dask")
