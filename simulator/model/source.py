"""The arrival source: schedules arrivals one at a time, classifies and routes each request.

It also marks the measurement window (from the first measured arrival to the last arrival)
and hands full chunks of finished requests to the recorder.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import simpy

from simulator.metrics.collector import CHUNK_SIZE, ReplicationRecorder
from simulator.model.events import Due
from simulator.model.node import Node
from simulator.model.request import Request
from simulator.model.router import Router
from simulator.scenario.schema import RequestClass


class ArrivalSource:
    """One pending arrival event at a time; the next is scheduled when the current one fires."""

    def __init__(
        self,
        env: simpy.Environment,
        gaps_ms: Iterator[float],
        total: int,
        class_draw: Iterator[int],
        classes: Sequence[RequestClass],
        nodes: Sequence[Node],
        router: Router,
        warmup: int,
        recorder: ReplicationRecorder,
    ) -> None:
        self.env = env
        self.gaps_ms = gaps_ms
        self.total = total
        self.class_draw = class_draw
        self.priorities = [c.priority for c in classes]
        self.deadlines_ms = [c.deadline_ms for c in classes]
        self.nodes = list(nodes)
        self.router = router
        self.warmup = warmup
        self.recorder = recorder
        self.finished = recorder.finished
        self.next_id = 0
        self.window_start_ms = 0.0
        self.window_end_ms = 0.0
        self.route = self.nodes[0].submit if len(self.nodes) == 1 else self._route

    def start(self) -> None:
        gap_ms = next(self.gaps_ms, None)
        if gap_ms is None:
            return
        Due(self.env, gap_ms, None, self._arrive)

    def _arrive(self, _event: Due) -> None:
        env = self.env
        now_ms = env._now
        request_id = self.next_id
        class_index = next(self.class_draw)
        self.route(
            Request(request_id, class_index, self.priorities[class_index], now_ms, now_ms + self.deadlines_ms[class_index])
        )
        if request_id == self.warmup:
            self.window_start_ms = now_ms
        if len(self.finished) >= CHUNK_SIZE:
            self.recorder.flush()
        self.next_id = request_id = request_id + 1
        gap_ms = next(self.gaps_ms, None) if request_id < self.total else None
        if gap_ms is None:
            self.window_end_ms = now_ms
        else:
            Due(env, gap_ms, None, self._arrive)

    def _route(self, request: Request) -> None:
        self.nodes[self.router.choose(request)].submit(request)
