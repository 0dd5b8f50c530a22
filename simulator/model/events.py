"""The one event kind the hot path schedules: a SimPy event already triggered, due after a delay.

It is what ``simpy.Timeout`` is, minus the argument checks, the separate callback append and
the call to ``Environment.schedule`` (whose one line it inlines), because arrivals and service
completions (two per request) dominate the run time.
"""

from __future__ import annotations

from collections.abc import Callable
from heapq import heappush
from typing import Any

import simpy
from simpy.events import NORMAL, Event


class Due(Event):
    """Fires ``callback(event)`` ``delay_ms`` from now; ``event.value`` is ``value``."""

    def __init__(self, env: simpy.Environment, delay_ms: float, value: Any, callback: Callable[[Event], None]) -> None:
        self.env = env
        self.callbacks = [callback]
        self._value = value
        self._ok = True
        heappush(env._queue, (env._now + delay_ms, NORMAL, next(env._eid), self))
