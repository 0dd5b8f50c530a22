"""The arrival source: schedules arrivals, classifies them, draws their service needs and routes them.

Arrivals come from one stream per arrival process: ``workload.arrival`` (its requests split over
the sharing classes by share) and each class's own process. Each stream keeps one pending
arrival event; request ids are given in arrival order over all streams.

The first ``measured`` requests (ids ``0 .. measured − 1``, warm-up included) are the ones a run
reports on. After them arrivals go on — unmeasured — until ``measured_done()`` says every one
of them has finished, so the end of a run never empties the queues the last requests see; then
the source stops the simulation. ``mark(request id, now)`` is called at the arrival of every ``mark_every``-th
request and of the last measured one (the runner records the nodes' busy integrals there). The
source asks whoever collects finished requests to ``flush`` them once ``chunk_size`` gathered.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from simulator.model.cluster import Cluster
from simulator.model.request import Request
from simulator.model.simulation import Due, Environment, Event
from simulator.scenario.workload import RequestClass

CHECK_EVERY = 1024  # unmeasured arrivals between two checks whether every measured request finished


class ArrivalStream:
    """One arrival process and how its arrivals are classified; one pending arrival at a time."""

    def __init__(self, source: ArrivalSource, gaps_ms: Iterator[float], class_draw: Iterator[int]) -> None:
        self.source = source
        self.gaps_ms = gaps_ms
        self.class_draw = class_draw

    def start(self) -> None:
        self._schedule(0.0)

    def _schedule(self, now_ms: float) -> None:
        gap_ms = next(self.gaps_ms, None)
        if gap_ms is None:
            self.source.stream_ended()
            return
        source = self.source
        Due(source.env, source.delay_ms(now_ms, gap_ms) if source.spikes else gap_ms, None, self._arrive)

    def _arrive(self, event: Due) -> None:
        source = self.source
        if source.stopped:
            return
        now_ms = event.at_ms
        source.arrive(next(self.class_draw), now_ms)
        if not source.stopped:
            self._schedule(now_ms)


class ArrivalSource:
    """The arrival streams of one replication, the request counter, and the end of the run."""

    def __init__(
        self,
        *,
        env: Environment,
        streams: Sequence[tuple[Iterator[float], Iterator[int]]],
        measured: int,
        classes: Sequence[RequestClass],
        requirements: Callable[[int], Sequence[float | None]],
        cluster: Cluster,
        finished: list[Request],
        flush: Callable[[], None],
        chunk_size: int,
        stop: Event,
        measured_done: Callable[[], bool],
        mark: Callable[[int, float], None],
        mark_every: int,
        key_draw: Iterator[int] | None = None,
    ) -> None:
        self.env = env
        self.streams = [ArrivalStream(self, gaps_ms, class_draw) for gaps_ms, class_draw in streams]
        self.measured = measured
        self.priorities = [c.priority for c in classes]
        self.deadlines_ms = [c.relative_deadline_ms for c in classes]
        self.requirements = requirements
        self.route = cluster.submit
        self.finished = finished
        self.flush = flush
        self.chunk_size = chunk_size
        self.stop_event = stop
        self.measured_done = measured_done
        self.mark = mark
        self.mark_every = mark_every
        self.key_draw = key_draw
        self.next_id = 0
        self.stopped = False  # no more arrivals: every measured request finished, or the streams ran out
        self.live_streams = len(self.streams)
        self._next_mark = 0
        self.spikes: list[tuple[float, float, float]] = []

    @property
    def exhausted(self) -> bool:
        """No more arrivals will come."""
        return self.stopped

    def add_spike(self, start_ms: float, end_ms: float, multiplier: float) -> None:
        """Between ``start_ms`` and ``end_ms`` every arrival process runs ``multiplier`` times faster."""
        self.spikes = sorted([*self.spikes, (start_ms, end_ms, multiplier)])

    def delay_ms(self, now_ms: float, gap_ms: float) -> float:
        """Real time until the next arrival: the process's gap, compressed where spikes are."""
        time_ms, remaining_ms = now_ms, gap_ms
        for start_ms, end_ms, multiplier in self.spikes:
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
        for arrival_stream in self.streams:
            arrival_stream.start()

    def arrive(self, class_index: int, now_ms: float) -> None:
        """A new request of ``class_index`` arrives now: it is numbered, given its service needs and routed."""
        request_id = self.next_id
        self.next_id = request_id + 1
        request = Request(
            request_id, class_index, self.priorities[class_index], now_ms, now_ms + self.deadlines_ms[class_index],
            self.requirements(class_index),
        )
        if self.key_draw is not None:
            request.key = next(self.key_draw)
        if request_id == self._next_mark or request_id == self.measured - 1:
            self.mark(request_id, now_ms)
            if request_id == self._next_mark:
                self._next_mark += self.mark_every
        self.route(request)
        if len(self.finished) >= self.chunk_size:
            self.flush()
        if request_id >= self.measured and (request_id - self.measured) % CHECK_EVERY == 0 and self.measured_done():
            self._stop()

    def stream_ended(self) -> None:
        """One arrival process ran out (a trace); when all have, no more arrivals come."""
        self.live_streams -= 1
        if self.live_streams == 0:
            self.stopped = True

    def _stop(self) -> None:
        self.stopped = True
        self.stop_event.succeed()
