"""The simulation clock: SimPy's Environment, and the one event kind the hot path schedules.

This is the only module that imports SimPy and the only one that touches its internals (the event
heap, the clock, event ids), which is what lets a request cost two cheap events. The supported
SimPy versions are pinned in pyproject.toml, and ``tests/test_simulation.py`` fails loudly if the
internals this module relies on change. Every other module uses the Environment's public API
(``now``, ``process``, ``timeout``, ``event``) and the helpers below.
"""

from __future__ import annotations

from collections.abc import Callable
from heapq import heappush
from typing import Any

import simpy
from simpy.core import EmptySchedule, StopSimulation
from simpy.events import NORMAL, Event

Environment = simpy.Environment


class Due(Event):
    """An event already triggered, firing ``callback(event)`` ``delay_ms`` from now; ``payload`` is what it carries.

    It is ``simpy.Timeout`` minus the argument checks, the separate callback append and the call
    to ``Environment.schedule`` (whose one line it inlines): arrivals and service completions, two
    per request, dominate the run time.
    """

    def __init__(self, env: Environment, delay_ms: float, payload: Any, callback: Callable[[Due], None]) -> None:
        self.env = env
        self.callbacks = [callback]
        self.payload = payload
        self._value = payload
        self._ok = True
        heappush(env._queue, (env._now + delay_ms, NORMAL, next(env._eid), self))


def cancel(event: Event) -> None:
    """Withdraw a scheduled event's callbacks (what SimPy does to an interrupted wait): it fires into nothing."""
    event.callbacks.clear()


def run_until(env: Environment, stop: Event) -> bool:
    """Process events until ``stop`` fires (True) or none are left (False), as ``Environment.run`` does."""
    stop.callbacks.append(StopSimulation.callback)
    step = env.step
    try:
        while True:
            step()
    except StopSimulation:
        return True
    except EmptySchedule:
        return False
