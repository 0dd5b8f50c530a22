"""The fast engine's driver: the built model as arrays, input in blocks, output in the SimPy path's chunks.

``simulate`` takes the same inputs as the SimPy path's ``ArrivalSource`` (arrival streams, class
draws, service requirements drawn at arrival, keys) and the cluster ``model/build.py`` built for
the replication, compiles that cluster into arrays (workers, queue capacities, disciplines,
admission, the router and its random stream), and runs ``kernel.advance`` until the run ends.
It hands every chunk of finished run-zone requests to ``emit`` as columns, at the points where the
SimPy path flushes its finished requests, so the recorder, the record writer and the time
series receive the same rows in the same order; the node integrals are recorded at the same
fine-batch marks. Same seed, same numbers as the SimPy path (tests/test_fastpath.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np

from simulator.fastpath import kernel
from simulator.model.admission import AdmitAll, DropExpired, DropHopeless
from simulator.model.cluster import Cluster
from simulator.model.disciplines import EarliestDeadlineFirst, Fifo, StrictPriority
from simulator.model.node import Marks, queue_overflow
from simulator.model.router import (
    JoinShortestQueue,
    PowerOfTwoChoices,
    Random,
    RoundRobin,
)
from simulator.model.service_draws import RequirementDraws
from simulator.random_streams import take
from simulator.scenario.workload import RequestClass

DROP_REASONS = np.array(["", "queue_full", "deadline"], dtype=object)  # by kernel drop code
BLOCK = 16384  # arrivals per stream drawn at a time (at most; a short run draws less)
_DISCIPLINES = {Fifo: kernel.FIFO, StrictPriority: kernel.PRIORITY, EarliestDeadlineFirst: kernel.EDF}
_ADMISSION = {AdmitAll: kernel.ADMIT_ALL, DropExpired: kernel.DROP_EXPIRED, DropHopeless: kernel.DROP_HOPELESS}
_ROUTERS = {RoundRobin: (kernel.ROUND_ROBIN, 0), Random: (kernel.RANDOM, 1), JoinShortestQueue: (kernel.SHORTEST_QUEUE, 1),
            PowerOfTwoChoices: (kernel.POWER_OF_TWO, 3)}  # kernel code, most uniforms per arrival
_UNLIMITED = 1 << 62  # keys available when requests carry none (the kernel never reads them)

ChunkSink = Callable[[dict[str, np.ndarray], np.ndarray, np.ndarray], None]  # columns, drop reasons, dropped


def simulate(
    *,
    cluster: Cluster,
    streams: Sequence[tuple[Iterator[float], Iterator[int]]],
    classes: Sequence[RequestClass],
    requirements: RequirementDraws,
    measured: int,
    chunk_size: int,
    check_every: int,
    mark_every: int,
    max_queue_length: int,
    emit: ChunkSink,
    key_draw: Iterator[int] | None = None,
) -> tuple[Marks, float]:
    """Run one replication; returns the fine-batch marks and the simulated time at its end, in ms (what
    ``ArrivalSource`` and ``run_until`` give the SimPy path)."""
    run = _Run(cluster, streams, classes, requirements, key_draw, measured, chunk_size)
    run.settings[[kernel.C_MEASURED, kernel.C_CHUNK, kernel.C_CHECK_EVERY, kernel.C_MARK_EVERY, kernel.C_MAX_QUEUE]] = (
        measured, chunk_size, check_every, mark_every, max_queue_length,
    )
    marks = -(-measured // mark_every) + 1  # the first arrival of every fine batch, and the last run-zone one
    mark_id, mark_ms, mark_areas = np.zeros(marks, np.int64), np.zeros(marks), np.zeros((marks, len(cluster.nodes), 2))
    while True:
        code = kernel.advance(
            run.state, run.settings, run.now_ms, run.heap_time, run.heap_int, run.nodes_int, run.nodes_float,
            run.line_head, run.line_tail, run.line_of, run.relative_deadline_ms, run.droppable, run.mean_service_ms,
            run.slots_int, run.slots_float, run.free, run.gaps_ms, run.gap_classes, run.requirements_ms,
            run.stream_position, run.stream_length, run.stream_ended, run.uniforms, run.keys, run.out_int,
            run.out_float, mark_id, mark_ms, mark_areas,
        )
        if code in (kernel.FLUSHED, kernel.STOPPED, kernel.EMPTY):
            run.hand_over(emit)
            if code != kernel.FLUSHED:
                break
        elif code == kernel.NEED_INPUT:
            run.top_up()
        elif code == kernel.POOL_FULL:
            run.grow_slots()
        elif code == kernel.OUT_FULL:
            run.grow_out()
        elif code == kernel.UNSTABLE:
            raise queue_overflow(cluster.nodes[run.state[kernel.S_INFO]].name, max_queue_length, float(run.now_ms[0]))
    recorded = range(int(run.state[kernel.S_MARKS]))
    down_ms = 0.0  # no events: never out of service
    return {
        int(mark_id[m]): (float(mark_ms[m]), [(busy, queue, down_ms) for busy, queue in mark_areas[m].tolist()]) for m in recorded
    }, float(run.now_ms[0])


class _Run:
    """Every array the kernel works on, and how they are filled and grown between its calls."""

    def __init__(
        self,
        cluster: Cluster,
        streams: Sequence[tuple[Iterator[float], Iterator[int]]],
        classes: Sequence[RequestClass],
        requirements: RequirementDraws,
        key_draw: Iterator[int] | None,
        measured: int,
        chunk_size: int,
    ) -> None:
        nodes = cluster.nodes
        self.block = min(BLOCK, max(1024, measured // 4))
        self.state = np.zeros(kernel.STATE_SIZE, np.int64)
        self.settings = np.zeros(kernel.SETTINGS_SIZE, np.int64)
        self.now_ms = np.zeros(1)
        self.heap_time, self.heap_int = kernel.empty_heap(len(streams) + sum(node.workers for node in nodes) + 1)
        self._compile_nodes(nodes, classes)
        self._compile_router(cluster)
        self.requirements = requirements
        self.streams = list(streams)
        count, specs = len(streams), requirements.specs
        self.gaps_ms = np.zeros((count, 0))
        self.gap_classes = np.zeros((count, 0), np.int64)
        self.requirements_ms = np.zeros((count, 0, specs))
        self.stream_position = np.zeros(count, np.int64)
        self.stream_length = np.zeros(count, np.int64)
        self.stream_ended = np.zeros(count, np.bool_)
        self.key_draw = key_draw
        self.keys = np.zeros(0, np.int64)
        self.settings[kernel.C_KEYS] = key_draw is not None
        if key_draw is None:
            self.state[kernel.S_KEYS] = _UNLIMITED
        self.slots_int = np.zeros((0, kernel.SLOT_INT_SIZE), np.int64)
        self.slots_float = np.zeros((0, kernel.SLOT_FLOAT_SIZE))
        self.free = np.zeros(0, np.int64)
        self.grow_slots(1024)
        self.out_int = np.zeros((kernel.OUT_INT_SIZE, 0), np.int64)
        self.out_float = np.zeros((kernel.OUT_FLOAT_SIZE, 0))
        self.grow_out(min(measured, chunk_size) + 1024)
        self.top_up()

    def _compile_nodes(self, nodes: Sequence, classes: Sequence[RequestClass]) -> None:
        priorities = sorted({c.priority for c in classes})
        self.nodes_int = np.zeros((len(nodes), kernel.NODE_INT_SIZE), np.int64)
        self.nodes_float = np.zeros((len(nodes), kernel.NODE_FLOAT_SIZE))
        self.line_head = np.full((len(nodes), len(classes)), -1, np.int64)
        self.line_tail = np.full((len(nodes), len(classes)), -1, np.int64)
        self.line_of = np.zeros((len(nodes), len(classes)), np.int64)
        self.mean_service_ms = np.zeros((len(nodes), len(classes)))
        self.relative_deadline_ms = np.array([c.relative_deadline_ms for c in classes], np.float64)
        self.droppable = np.zeros(len(classes), np.bool_)
        for index, node in enumerate(nodes):
            discipline = _DISCIPLINES.get(type(node.queue))
            admission = _ADMISSION.get(type(node.admission))
            if discipline is None or admission is None or not node.simple and node.admits is None or len(node.queues) != 1:
                raise RuntimeError(f"node {node.name!r} is not one the fast engine simulates (an eligibility bug)")
            self.nodes_int[index, kernel.N_WORKERS] = node.workers
            self.nodes_int[index, kernel.N_CAPACITY] = -1 if node.queue_capacity is None else node.queue_capacity
            self.nodes_int[index, kernel.N_ADMISSION] = admission
            self.nodes_int[index, kernel.N_DISCIPLINE] = discipline
            self.nodes_int[index, kernel.N_SPEC] = node.spec_index
            self.mean_service_ms[index] = node.mean_service_ms
            if discipline == kernel.PRIORITY:
                self.line_of[index] = [priorities.index(c.priority) for c in classes]
            elif discipline == kernel.EDF:
                self.line_of[index] = np.arange(len(classes))
            if admission != kernel.ADMIT_ALL:
                self.droppable |= np.asarray(node.admission.droppable, np.bool_)

    def _compile_router(self, cluster: Cluster) -> None:
        self.router_uniforms: Iterator[float] | None = None
        self.uniforms = np.zeros(0)
        if len(cluster.nodes) == 1:
            self.settings[kernel.C_ROUTER] = kernel.DIRECT
            return
        router = cluster.routers[0]
        if type(router) not in _ROUTERS or len(cluster.routers) != 1:
            raise RuntimeError(f"router {type(router).__name__} is not one the fast engine simulates (an eligibility bug)")
        code, per_arrival = _ROUTERS[type(router)]
        self.settings[kernel.C_ROUTER] = code
        self.settings[kernel.C_UNIFORMS_PER_ARRIVAL] = per_arrival
        self.router_uniforms = router.uniforms if per_arrival else None

    def top_up(self) -> None:
        """Refill whatever runs low: each stream's arrivals (gap, class, requirements), router uniforms, keys."""
        low = [s for s in range(len(self.streams)) if self.stream_length[s] - self.stream_position[s] < 2 and not self.stream_ended[s]]
        if low:
            self._top_up_streams(low)
        if self.router_uniforms is not None and self.state[kernel.S_UNIFORMS] - self.state[kernel.S_UNIFORM] < 3:
            self.uniforms = _refilled(self.uniforms, self.state, kernel.S_UNIFORM, kernel.S_UNIFORMS, self.router_uniforms, np.float64, self.block)
        if self.key_draw is not None and self.state[kernel.S_KEYS] - self.state[kernel.S_KEY] < 1:
            self.keys = _refilled(self.keys, self.state, kernel.S_KEY, kernel.S_KEYS, self.key_draw, np.int64, self.block)

    def _top_up_streams(self, low: list[int]) -> None:
        kept = [self.stream_length[s] - self.stream_position[s] for s in range(len(self.streams))]
        fresh = {}
        for s in low:
            gap_draws, class_draws = self.streams[s]
            gaps = take(gap_draws, self.block)
            gap_classes = take(class_draws, len(gaps), np.int64)
            fresh[s] = gaps, gap_classes, self.requirements.block(gap_classes)
            self.stream_ended[s] = len(gaps) < self.block
        width = max(kept[s] + (len(fresh[s][0]) if s in fresh else 0) for s in range(len(self.streams)))
        gaps_ms = np.zeros((len(self.streams), width))
        gap_classes = np.zeros((len(self.streams), width), np.int64)
        requirements_ms = np.zeros((len(self.streams), width, self.requirements_ms.shape[2]))
        for s in range(len(self.streams)):
            begin, end = self.stream_position[s], self.stream_length[s]
            parts = [(self.gaps_ms[s, begin:end], self.gap_classes[s, begin:end], self.requirements_ms[s, begin:end])]
            if s in fresh:
                parts.append(fresh[s])
            filled = 0
            for gaps, classes, needs in parts:
                gaps_ms[s, filled : filled + len(gaps)] = gaps
                gap_classes[s, filled : filled + len(gaps)] = classes
                requirements_ms[s, filled : filled + len(gaps)] = needs
                filled += len(gaps)
            self.stream_position[s], self.stream_length[s] = 0, filled
        self.gaps_ms, self.gap_classes, self.requirements_ms = gaps_ms, gap_classes, requirements_ms

    def grow_slots(self, count: int | None = None) -> None:
        """More request slots (double, or ``count`` to begin with): every request in the system holds one."""
        old = len(self.free)
        new = count or 2 * old
        self.slots_int = _grown(self.slots_int, new)
        self.slots_float = _grown(self.slots_float, new)
        free = np.zeros(new, np.int64)
        free[: self.state[kernel.S_FREE]] = self.free[: self.state[kernel.S_FREE]]
        free[self.state[kernel.S_FREE] : self.state[kernel.S_FREE] + new - old] = np.arange(old, new)
        self.free = free
        self.state[kernel.S_FREE] += new - old

    def grow_out(self, count: int | None = None) -> None:
        """More output rows (double, or ``count`` to begin with)."""
        new = count or 2 * self.out_int.shape[1]
        self.out_int = _grown(self.out_int.T, new).T.copy()
        self.out_float = _grown(self.out_float.T, new).T.copy()

    def hand_over(self, emit: ChunkSink) -> None:
        """Emit the output rows as one chunk of columns (``RequestChunk`` fields), then empty them."""
        rows = int(self.state[kernel.S_OUT])
        self.state[kernel.S_OUT] = 0
        if rows == 0:
            return
        ints, floats = self.out_int[:, :rows].copy(), self.out_float[:, :rows].copy()
        zeros, no_ints = np.zeros(rows), np.zeros(rows, np.int64)
        columns = {name: zeros for name in (
            "batch_wait_ms", "network_ms", "cache_ms", "load_ms", "copy_ms", "lost_ms", "preempted_ms", "transfer_ms",
            "upstream_wait_ms", "upstream_service_ms",
        )}
        columns |= {"retries": no_ints, "stage": no_ints, "batch_size": np.ones(rows, np.int64)}
        columns |= {
            "request_id": ints[kernel.O_ID], "class_index": ints[kernel.O_CLASS], "node_index": ints[kernel.O_NODE],
            "key": ints[kernel.O_KEY], "arrival_ms": floats[kernel.O_ARRIVAL], "node_arrival_ms": floats[kernel.O_ARRIVAL],
            "start_ms": floats[kernel.O_START], "service_ms": floats[kernel.O_SERVICE], "end_ms": floats[kernel.O_END],
        }
        emit(columns, DROP_REASONS[ints[kernel.O_DROP]], ints[kernel.O_DROP] != 0)


def _grown(array: np.ndarray, rows: int) -> np.ndarray:
    grown = np.zeros((rows, *array.shape[1:]), array.dtype)
    grown[: len(array)] = array
    return grown


def _refilled(
    buffer: np.ndarray, state: np.ndarray, position: int, length: int, source: Iterator, dtype: type, count: int
) -> np.ndarray:
    """``buffer``'s unread values followed by ``count`` fresh ones from ``source`` (state's position and length reset)."""
    unread = buffer[state[position] : state[length]]
    refilled = np.concatenate([unread, take(source, count, dtype)])
    state[position], state[length] = 0, len(refilled)
    return refilled
