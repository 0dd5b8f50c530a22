"""The fast engine's driver: the built model as arrays, input in blocks, output in the SimPy path's chunks.

``simulate`` takes the same inputs as the SimPy path's ``ArrivalSource`` (arrival streams, class
draws, service requirements drawn at arrival, keys) and the cluster ``model/build.py`` built for
the replication, compiles that cluster into arrays (workers, queue capacities, disciplines,
admission, each node's machine — speed process, occupancy slowdown, overhead —, the router and its
random stream, the network's delay streams), and runs ``kernel.advance`` until the run ends. Every
random stream is read from the model's own draw iterators, in the blocks they draw.
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
from simulator.model.device import StagedExecutor
from simulator.model.disciplines import EarliestDeadlineFirst, Fifo, StrictPriority
from simulator.model.machine import CallTime
from simulator.model.node import Marks, Node, queue_overflow
from simulator.model.router import (
    JoinShortestQueue,
    LeastOutstandingWork,
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
            PowerOfTwoChoices: (kernel.POWER_OF_TWO, 3), LeastOutstandingWork: (kernel.LEAST_WORK, 1)}  # kernel code, most uniforms per arrival
_UNLIMITED = 1 << 62  # keys or per-call draws available where none are drawn (the kernel never reads them)

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
            run.stream_position, run.stream_length, run.stream_ended, run.routers_int, run.uniforms, run.keys,
            run.key_partitions, run.delays_ms,
            run.call_factors, run.overhead_multipliers, run.slowdown_table, run.overhead_table, run.device_slowdown, run.out_int,
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
        elif code == kernel.HEAP_FULL:
            run.grow_heap()
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
        self.settings[kernel.C_HEAP_ROOM] = 2 * max(node.workers for node in nodes) + 3
        self.heap_time, self.heap_int = kernel.empty_heap(
            len(streams) + sum(node.workers for node in nodes) + int(self.settings[kernel.C_HEAP_ROOM])
        )
        self._compile_nodes(nodes, classes)
        self._compile_devices(nodes)
        self._compile_machines(nodes, cluster.nodes[0].max_queue_length)
        self._compile_router(cluster)
        self._compile_network(cluster)
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
        self.key_partitions = np.zeros(0, np.int64)  # the partition of each key (with partitions)
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
            device = _device(node)
            if discipline is None or admission is None or device is None or len(node.queues) != 1:
                raise RuntimeError(f"node {node.name!r} is not one the fast engine simulates (an eligibility bug)")
            self.nodes_int[index, kernel.N_DEVICE] = device
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

    def _compile_devices(self, nodes: Sequence[Node]) -> None:
        """Each device's compute-time factor by the calls computing at once (0 .. its workers)."""
        self.device_slowdown = np.ones((len(nodes), max(node.workers for node in nodes) + 1))
        self.nodes_int[:, kernel.N_COMPUTING_HEAD] = self.nodes_int[:, kernel.N_COMPUTING_TAIL] = -1
        for index, node in enumerate(nodes):
            if isinstance(node.executor, StagedExecutor):
                self.device_slowdown[index, : node.workers + 1] = [node.executor.slowdown(k) for k in range(node.workers + 1)]

    def _compile_machines(self, nodes: Sequence[Node], max_queue_length: int) -> None:
        """Each node's ``CallTime``: its occupancy curves as tables, and which per-call draws its calls take."""
        self.machines: list[CallTime | None] = [node.call_time for node in nodes]
        tables: dict[tuple[int, int], np.ndarray] = {}  # (node, kernel field of its points) → values by occupancy
        for index, (node, machine) in enumerate(zip(nodes, self.machines)):
            if machine is None:
                continue
            most = node.workers + max_queue_length  # no call starts at a higher occupancy
            if machine.slowdown is not None:
                tables[index, kernel.N_SLOWDOWN_POINTS] = machine.slowdown.table(most)
            if machine.overhead is not None:
                tables[index, kernel.N_OVERHEAD_POINTS] = machine.overhead.mean_ms.table(most)
                self.nodes_int[index, kernel.N_OVERHEAD] = 1 if machine.overhead.multipliers is None else 2
            self.nodes_int[index, kernel.N_SPEED] = machine.speed is not None
        width = max((len(table) for table in tables.values()), default=1)
        self.slowdown_table = np.zeros((len(nodes), width))
        self.overhead_table = np.zeros((len(nodes), width))
        for (index, field), table in tables.items():
            target = self.slowdown_table if field == kernel.N_SLOWDOWN_POINTS else self.overhead_table
            target[index, : len(table)] = table
            self.nodes_int[index, field] = len(table)
        self.speed_states = [None if m is None or m.speed is None else m.speed.state for m in self.machines]
        self.call_factors = np.zeros((len(nodes), 0))
        self.overhead_multipliers = np.zeros((len(nodes), 0))
        self._refill_calls([])

    def _compile_network(self, cluster: Cluster) -> None:
        """The network's delay streams: one for ``delay`` (both legs draw from it in turn), else one per leg."""
        legs = [cluster.request_delay_ms, cluster.response_delay_ms]
        self.delay_draws: list[Iterator[float]] = []
        for leg, draws in zip((kernel.C_REQUEST_LEG, kernel.C_RESPONSE_LEG), legs):
            if draws is not None and not any(draws is known for known in self.delay_draws):
                self.delay_draws.append(draws)
            self.settings[leg] = -1 if draws is None else next(k for k, known in enumerate(self.delay_draws) if known is draws)
        self.delays_ms = np.zeros((2, 0))

    def _compile_router(self, cluster: Cluster) -> None:
        """The routers, one per partition (each over consecutive nodes), their random streams, and the partitioner."""
        self.routers_int = np.zeros((max(len(cluster.routers), 1), kernel.ROUTER_INT_SIZE), np.int64)
        self.uniforms = np.zeros((len(self.routers_int), 0))
        self.router_uniforms: list[Iterator[float]] = []
        self.partitioner = cluster.partitioner
        self.settings[kernel.C_PARTITIONED] = cluster.partitioner is not None
        if len(cluster.nodes) == 1:
            self.settings[kernel.C_ROUTER] = kernel.DIRECT
            return
        kinds = {type(router) for router in cluster.routers}
        if len(kinds) != 1 or not kinds <= _ROUTERS.keys():
            raise RuntimeError(f"routers {kinds} are not ones the fast engine simulates (an eligibility bug)")
        code, per_arrival = _ROUTERS[kinds.pop()]
        self.settings[kernel.C_ROUTER] = code
        self.settings[kernel.C_UNIFORMS_PER_ARRIVAL] = per_arrival
        for index, router in enumerate(cluster.routers):
            first = router.replicas[0].index
            if [node.index for node in router.replicas] != list(range(first, first + len(router.replicas))):
                raise RuntimeError("a router's replicas are not consecutive nodes (an eligibility bug)")
            self.routers_int[index, [kernel.RT_FIRST, kernel.RT_COUNT]] = first, len(router.replicas)
        self.router_uniforms = [router.uniforms for router in cluster.routers] if per_arrival else []

    def top_up(self) -> None:
        """Refill whatever runs low: each stream's arrivals (gap, class, requirements), router uniforms, keys (and
        their partitions), network delays, the nodes' per-call draws."""
        low = [s for s in range(len(self.streams)) if self.stream_length[s] - self.stream_position[s] < 2 and not self.stream_ended[s]]
        if low:
            self._top_up_streams(low)
        if self.router_uniforms and self.state[kernel.S_UNIFORMS_LEFT] < self.settings[kernel.C_UNIFORMS_PER_ARRIVAL]:
            begins, ends = self.routers_int[:, kernel.RT_UNIFORM], self.routers_int[:, kernel.RT_UNIFORMS]
            low = [r for r in range(len(self.router_uniforms)) if ends[r] - begins[r] < self.settings[kernel.C_UNIFORMS_PER_ARRIVAL]]
            self.uniforms, self.routers_int[:, kernel.RT_UNIFORMS] = _rows_refilled(
                self.uniforms, begins, ends, {r: take(self.router_uniforms[r], self.block) for r in low}
            )
            self.routers_int[:, kernel.RT_UNIFORM] = 0
            self.state[kernel.S_UNIFORMS_LEFT] = self.routers_int[:, kernel.RT_UNIFORMS].min()
        if self.key_draw is not None and self.state[kernel.S_KEYS] - self.state[kernel.S_KEY] < 1:
            self.keys = _refilled(self.keys, self.state, kernel.S_KEY, kernel.S_KEYS, self.key_draw, np.int64, self.block)
            if self.partitioner is not None:
                self.key_partitions = self.partitioner.owners(self.keys).astype(np.int64, copy=False)
        positions, lengths = [kernel.S_DELAY, kernel.S_DELAY + 2], [kernel.S_DELAYS, kernel.S_DELAYS + 2]
        low = [k for k in range(len(self.delay_draws)) if self.state[lengths[k]] - self.state[positions[k]] < 1]
        if low:
            self.delays_ms, self.state[lengths] = _rows_refilled(
                self.delays_ms, self.state[positions], self.state[lengths], {k: take(self.delay_draws[k], self.block) for k in low}
            )
            self.state[positions] = 0
        if self.state[kernel.S_CALLS_LEFT] < 1:
            self._refill_calls([n for n in range(len(self.machines)) if self._calls_left(n) < 1])

    def _calls_left(self, node: int) -> int:
        """Calls node ``node`` can start on its buffered draws (unlimited when its calls draw nothing)."""
        takes = self.nodes_int[node, kernel.N_SPEED] or self.nodes_int[node, kernel.N_OVERHEAD] == 2
        return int(self.nodes_int[node, kernel.N_CALLS] - self.nodes_int[node, kernel.N_CALL]) if takes else _UNLIMITED

    def _refill_calls(self, low: list[int]) -> None:
        """The next block of per-call draws of each node in ``low``: speed factors (the chain stepped over its
        uniforms) and overhead multipliers."""
        factors, multipliers = {}, {}
        for node in low:
            machine = self.machines[node]
            if machine.speed is not None:
                uniforms, normals = machine.speed.next_draws(self.block)
                states = kernel.chain_states(machine.speed.cumulative, self.speed_states[node], uniforms)
                self.speed_states[node] = int(states[-1])
                factors[node] = machine.speed.factors_of(states[:-1], normals)
            if machine.overhead is not None and machine.overhead.multipliers is not None:
                multipliers[node] = take(machine.overhead.multipliers, self.block)
        begins, ends = self.nodes_int[:, kernel.N_CALL], self.nodes_int[:, kernel.N_CALLS]
        self.call_factors, _ = _rows_refilled(self.call_factors, begins, ends, factors)
        self.overhead_multipliers, _ = _rows_refilled(self.overhead_multipliers, begins, ends, multipliers)
        for node in low:
            self.nodes_int[node, kernel.N_CALLS] += self.block
        self.nodes_int[:, kernel.N_CALLS] -= self.nodes_int[:, kernel.N_CALL]
        self.nodes_int[:, kernel.N_CALL] = 0
        self.state[kernel.S_CALLS_LEFT] = min((self._calls_left(n) for n in range(len(self.machines))), default=_UNLIMITED)

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

    def grow_heap(self) -> None:
        """Room for twice as many pending events (requests in the network each hold one)."""
        heap_time, heap_int = kernel.empty_heap(2 * len(self.heap_time))
        heap_time[: len(self.heap_time)], heap_int[: len(self.heap_time)] = self.heap_time, self.heap_int
        self.heap_time, self.heap_int = heap_time, heap_int

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
            "batch_wait_ms", "cache_ms", "load_ms", "copy_ms", "lost_ms", "preempted_ms", "transfer_ms",
            "upstream_wait_ms", "upstream_service_ms",
        )}
        columns |= {"retries": no_ints, "stage": no_ints, "batch_size": np.ones(rows, np.int64)}
        columns |= {
            "request_id": ints[kernel.O_ID], "class_index": ints[kernel.O_CLASS], "node_index": ints[kernel.O_NODE],
            "key": ints[kernel.O_KEY], "arrival_ms": floats[kernel.O_ARRIVAL],
            "start_ms": floats[kernel.O_START], "service_ms": floats[kernel.O_SERVICE], "end_ms": floats[kernel.O_END],
            "node_arrival_ms": floats[kernel.O_NODE_ARRIVAL], "network_ms": floats[kernel.O_NETWORK],
        }
        emit(columns, DROP_REASONS[ints[kernel.O_DROP]], ints[kernel.O_DROP] != 0)


def _grown(array: np.ndarray, rows: int) -> np.ndarray:
    grown = np.zeros((rows, *array.shape[1:]), array.dtype)
    grown[: len(array)] = array
    return grown


def _device(node: Node) -> int | None:
    """How the node runs a call (``kernel.N_DEVICE``), or None where the fast engine cannot (batching, a queue
    policy, preemption, copies or model loads)."""
    if node.batcher is not None or node.queue_policy is not None or node.preemption is not None:
        return None
    executor = node.executor
    if not isinstance(executor, StagedExecutor):
        return 0
    if executor.h2d is not None or executor.d2h is not None or executor.memory is not None:
        return None
    return 2 if executor.shares_compute else 1


def _rows_refilled(
    array: np.ndarray, begins: np.ndarray, ends: np.ndarray, fresh: dict[int, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Each row's unread values (``begins`` to ``ends``) followed by its ``fresh`` ones, and each row's new length."""
    lengths = np.array([ends[r] - begins[r] + len(fresh.get(r, ())) for r in range(len(array))], np.int64)
    refilled = np.zeros((len(array), max(lengths.max(initial=0), 1)))
    for row in range(len(array)):
        kept = array[row, begins[row] : ends[row]]
        refilled[row, : len(kept)] = kept
        if row in fresh:
            refilled[row, len(kept) : lengths[row]] = fresh[row]
    return refilled, lengths


def _refilled(
    buffer: np.ndarray, state: np.ndarray, position: int, length: int, source: Iterator, dtype: type, count: int
) -> np.ndarray:
    """``buffer``'s unread values followed by ``count`` fresh ones from ``source`` (state's position and length reset)."""
    unread = buffer[state[position] : state[length]]
    refilled = np.concatenate([unread, take(source, count, dtype)])
    state[position], state[length] = 0, len(refilled)
    return refilled
