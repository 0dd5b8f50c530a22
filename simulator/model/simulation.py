"""The simulation clock: SimPy's Environment, and the one event kind the hot path schedules.

This is the only module that imports SimPy and the only one that touches its internals (the event
heap, the clock, event ids), which is what lets a request cost two cheap events. The supported
SimPy versions are pinned in pyproject.toml, and ``tests/test_simulation.py`` fails loudly if the
internals this module relies on change. Every other module uses the Environment's public API
(``now``, ``process``, ``timeout``, ``event``) and the helpers below.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from heapq import heappop, heappush
from typing import Any

import simpy
from simpy.core import StopSimulation
from simpy.events import NORMAL, Event

Environment = simpy.Environment


class Due(Event):
    """An event already triggered, firing ``callback(event)`` ``delay_ms`` from now; ``payload`` is what it carries.

    It is ``simpy.Timeout`` minus the argument checks, the separate callback append and the call
    to ``Environment.schedule`` (whose one line it inlines): arrivals and service completions, two
    per request, dominate the run time. ``at_ms`` is when it fires (``env.now`` in its callback,
    without the property call).
    """

    def __init__(self, env: Environment, delay_ms: float, payload: Any, callback: Callable[[Due], None]) -> None:
        self.env = env
        self.callbacks = [callback]
        self.payload = payload
        self._value = payload
        self._ok = True
        self.at_ms = at_ms = env._now + delay_ms
        heappush(env._queue, (at_ms, NORMAL, next(env._eid), self))


def cancel(event: Event) -> None:
    """Withdraw a scheduled event's callbacks (what SimPy does to an interrupted wait): it fires into nothing."""
    event.callbacks.clear()


def run_until(env: Environment, stop: Event) -> bool:
    """Process events until ``stop`` fires (True) or none are left (False), as ``Environment.run`` does.

    ``Environment.step`` inlined (one method call less per event, two per request), with the cyclic
    garbage collector paused: the hot path allocates two objects per request and no cycles, yet
    those allocations trigger collections that walk every live object (~30 % of the run time).
    Cycles made meanwhile (SimPy processes of failures and updates) are collected once it resumes.
    """
    stop.callbacks.append(StopSimulation.callback)
    queue = env._queue
    with paused_gc():
        try:
            while queue:
                env._now, _, _, event = heappop(queue)
                callbacks, event.callbacks = event.callbacks, None
                for callback in callbacks:
                    callback(event)
                if not event._ok and not hasattr(event, "_defused"):
                    raise _crash(event)
        except StopSimulation:
            return True
    return False


def _crash(event: Event) -> BaseException:
    """What ``Environment.step`` raises for a failed event nobody defused: a copy of its exception."""
    error = type(event._value)(*event._value.args)
    error.__cause__ = event._value
    return error


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector (reference counting still frees everything acyclic)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
