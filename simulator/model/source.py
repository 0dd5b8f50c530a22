"""The arrival source: schedules arrivals one at a time, classifies and routes each request.

It also marks the measurement window (from the first measured arrival to the last arrival),
and asks whoever collects finished requests to ``flush`` them once ``chunk_size`` have gathered
in ``finished`` (so memory stays bounded however long the run).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from simulator.model.cluster import Cluster
from simulator.model.request import Request
from simulator.model.simulation import Due, Environment
from simulator.scenario.workload import RequestClass


class ArrivalSource:
    """One pending arrival event at a time; the next is scheduled when the current one fires."""

    def __init__(
        self,
        *,
        env: Environment,
        gaps_ms: Iterator[float],
        total: int,
        class_draw: Iterator[int],
        classes: Sequence[RequestClass],
        cluster: Cluster,
        warmup: int,
        finished: list[Request],
        flush: Callable[[], None],
        chunk_size: int,
        key_draw: Iterator[int] | None = None,
    ) -> None:
        self.env = env
        self.gaps_ms = gaps_ms
        self.total = total
        self.class_draw = class_draw
        self.key_draw = key_draw
        self.priorities = [c.priority for c in classes]
        self.deadlines_ms = [c.deadline_ms for c in classes]
        self.route = cluster.submit
        self.warmup = warmup
        self.finished = finished
        self.flush = flush
        self.chunk_size = chunk_size
        self.next_id = 0
        self.window_start_ms = 0.0
        self.window_end_ms = 0.0
        self.exhausted = False
        self._spikes: list[tuple[float, float, float]] = []

    def add_spike(self, start_ms: float, end_ms: float, multiplier: float) -> None:
        """Between ``start_ms`` and ``end_ms`` the arrival process runs ``multiplier`` times faster."""
        self._spikes = sorted([*self._spikes, (start_ms, end_ms, multiplier)])

    def _delay_ms(self, now_ms: float, gap_ms: float) -> float:
        """Real time until the next arrival: the process's gap, compressed where spikes are."""
        time_ms, remaining_ms = now_ms, gap_ms
        for start_ms, end_ms, multiplier in self._spikes:
            if end_ms <= time_ms:
                continue
            if start_ms > time_ms:
                if time_ms + remaining_ms <= start_ms:
                    break
                remaining_ms -= start_ms - time_ms
                time_ms = start_ms
            span_ms = (end_ms - time_ms) * multiplier
            if remaining_ms <= span_ms:
                return time_ms + remaining_ms / multiplier - now_ms
            remaining_ms -= span_ms
            time_ms = end_ms
        return time_ms + remaining_ms - now_ms

    def start(self) -> None:
        gap_ms = next(self.gaps_ms, None)
        if gap_ms is None:
            self.exhausted = True
            return
        Due(self.env, self._delay_ms(0.0, gap_ms), None, self._arrive)

    def _arrive(self, _event: Due) -> None:
        env = self.env
        now_ms = env.now
        request_id = self.next_id
        class_index = next(self.class_draw)
        request = Request(request_id, class_index, self.priorities[class_index], now_ms, now_ms + self.deadlines_ms[class_index])
        if self.key_draw is not None:
            request.key = next(self.key_draw)
        self.route(request)
        if request_id == self.warmup:
            self.window_start_ms = now_ms
        if len(self.finished) >= self.chunk_size:
            self.flush()
        self.next_id = request_id = request_id + 1
        gap_ms = next(self.gaps_ms, None) if request_id < self.total else None
        if gap_ms is None:
            self.window_end_ms = now_ms
            self.exhausted = True
        else:
            Due(env, self._delay_ms(now_ms, gap_ms) if self._spikes else gap_ms, None, self._arrive)
