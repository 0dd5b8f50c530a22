"""How a node runs one call (a batch of requests) on a worker: the executor protocol, and the plain one.

A node hands ``start(batch, service_ms)`` a batch whose requests carry their start time; the
executor calls ``on_done(handle, batch)`` when the call ends (the node connects it) and gives the
requests back from ``cancel(handle)`` when the node fails. The plain executor runs a call as one
timed event; ``device.StagedExecutor`` runs load, copies and shared compute.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

from simulator.model.request import Request
from simulator.model.simulation import Due, Environment, cancel


def _unconnected(_handle: Any, _batch: list[Request]) -> None:
    raise RuntimeError("executor is not connected to a node")


class Executor(ABC):
    """Runs calls; ``on_done(handle, batch)`` is set by the node that owns it."""

    def __init__(self, env: Environment) -> None:
        self.env = env
        self.on_done: Callable[[Any, list[Request]], None] = _unconnected

    @abstractmethod
    def start(self, batch: list[Request], service_ms: float) -> Any:
        """Begin a call; returns its handle."""

    @abstractmethod
    def cancel(self, handle: Any) -> list[Request]:
        """Stop a running call; returns its requests."""

    def fail(self) -> None:
        """The node went down: forget whatever the node held (loaded models, ...)."""


class PlainExecutor(Executor):
    """A call is one event, ``service_ms`` after it starts."""

    def start(self, batch, service_ms):
        return Due(self.env, service_ms, batch, self._done)

    def _done(self, event: Due) -> None:
        self.on_done(event, event.payload)

    def cancel(self, handle):
        cancel(handle)
        return handle.payload
