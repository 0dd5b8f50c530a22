"""The compiled event loop of the fast engine: the SimPy model's node and router rules over arrays.

``advance`` processes events until something needs Python: a chunk of finished requests to hand
over (exactly where the SimPy path flushes one), input to top up (arrival gaps, router
uniforms, keys, network delays, the nodes' per-call draws), room to grow (request slots, output
rows, events), the end of the run, or a queue past ``run.max_queue_length``. All state lives in the arrays the driver (``engine.py``) owns, so a call
resumes where the last one stopped. It is compiled once with numba and cached on disk.

Exactness: events are ordered by (time, scheduling sequence) like SimPy's heap (time, priority,
event id); events are scheduled in the order the SimPy path schedules them; every time and
integral is computed with the same floating-point operations in the same order (``Node._advance``,
``Node.areas``, the admission rules). The rules mirrored here are those of ``model/node.py``
(submit, dispatch, completion; drops for a full queue and by admission), ``model/machine.py``
(a call's time: speed factor, occupancy slowdown, overhead), ``model/device.py`` (compute shared
by the calls on a device: every running call re-timed when their number changes), ``model/disciplines.py`` (fifo,
strict priority, EDF), ``model/admission.py`` (expired, predictive), ``model/router.py`` (round
robin, random, join-shortest-queue, power of two choices, least work), ``model/partitioning.py``
(a partition per key, its own router), ``model/cluster.py`` (the network's request and response
legs) and ``model/source.py`` (ids, fine-batch marks, chunk flushes, the
end of the run).
"""

from __future__ import annotations

import numpy as np
from numba import njit

# event kinds
ARRIVAL = 0
COMPLETION = 1
REACH = 2  # a request reaches its node after the network's request leg
RESPONSE = 3  # a served request's answer reaches the client after the response leg

# what ``advance`` returns
FLUSHED = 0  # the SimPy path flushes its finished requests here: the output rows are a chunk
STOPPED = 1  # every run-zone request finished: the run ends (the output rows are its last chunk)
EMPTY = 2  # no event left (the arrivals ran out, everything finished): the output rows are the last chunk
NEED_INPUT = 3  # top up the arrival buffers, router uniforms or keys
POOL_FULL = 4  # more request slots needed
OUT_FULL = 5  # more output rows needed
UNSTABLE = 6  # a queue grew past run.max_queue_length (node in state[S_INFO])
HEAP_FULL = 7  # more room for pending events needed

# drop codes of output rows (index into engine.DROP_REASONS)
SERVED = 0
QUEUE_FULL = 1
DEADLINE = 2

# disciplines, admission policies, routers
FIFO = 0
PRIORITY = 1
EDF = 2
ADMIT_ALL = 0
DROP_EXPIRED = 1
DROP_HOPELESS = 2
DIRECT = 0  # one node and nothing in between: no router at all
ROUND_ROBIN = 1
RANDOM = 2
SHORTEST_QUEUE = 3
POWER_OF_TWO = 4
LEAST_WORK = 5

# scalar state (int64 array ``state``)
S_NEXT_ID = 0  # the next request id
S_SEQUENCE = 1  # events scheduled so far (the tie-break of equal times)
S_HEAP = 2  # events pending
S_PENDING = 3  # requests finished since the last flush, any id
S_OUT = 4  # output rows filled
S_ZONE_DONE = 5  # run-zone requests finished
S_NEXT_MARK = 6  # the next request id whose arrival records the node integrals
S_MARKS = 7  # marks recorded
S_UNIFORMS_LEFT = 8  # router uniforms the router with the fewest still has buffered
S_KEY = 9  # next key
S_KEYS = 10  # keys available
S_FREE = 11  # free request slots
S_STARTED = 12  # the streams' first arrivals are scheduled
S_INFO = 13  # the node of UNSTABLE
S_CALLS_LEFT = 14  # calls any node can still start on its buffered per-call draws
S_DELAY = 15  # next delay of network stream 0 (S_DELAY + 2 for stream 1)
S_DELAYS = 16  # delays of network stream 0 available (S_DELAYS + 2 for stream 1)
STATE_SIZE = 19

# settings (int64 array ``settings``)
C_MEASURED = 0  # run-zone requests (ids 0 .. measured − 1)
C_CHUNK = 1  # finished requests that trigger a flush
C_CHECK_EVERY = 2  # unmeasured arrivals between two checks whether the run zone finished
C_MARK_EVERY = 3  # fine batch size
C_MAX_QUEUE = 4  # run.max_queue_length
C_ROUTER = 5
C_UNIFORMS_PER_ARRIVAL = 6  # the most router uniforms one arrival may take
C_KEYS = 7  # 1: requests carry keys
C_REQUEST_LEG = 8  # the network stream of the request leg, −1: none
C_RESPONSE_LEG = 9  # the network stream of the response leg, −1: none (the same stream as the request leg: ``delay``)
C_HEAP_ROOM = 10  # the most events one event may schedule, plus one
C_PARTITIONED = 11  # 1: a request's key picks its partition's router (``key_partitions``)
SETTINGS_SIZE = 12

# per node, int64 ``nodes_int[node, ...]`` and float64 ``nodes_float[node, ...]``
N_WORKERS = 0
N_CAPACITY = 1  # waiting places, −1: unbounded
N_ADMISSION = 2
N_DISCIPLINE = 3
N_SPEC = 4  # node spec index: which service requirement applies
N_BUSY = 5
N_WAITING = 6
N_PUSHES = 7  # requests queued so far (EDF's tie-break)
N_IN_FLIGHT = 8  # sent by the router and not answered yet
N_SPEED = 9  # 1: calls take a speed factor from ``call_factors``
N_OVERHEAD = 10  # 0: no overhead; 1: its mean; 2: its mean × a multiplier from ``overhead_multipliers``
N_SLOWDOWN_POINTS = 11  # entries of the node's ``slowdown_table`` row (0: no occupancy slowdown)
N_OVERHEAD_POINTS = 12  # entries of its ``overhead_table`` row
N_CALL = 13  # next entry of its per-call draws
N_CALLS = 14  # per-call draws buffered
N_DEVICE = 15  # 0: a call is one event; 1: a device whose calls compute alone; 2: one that shares compute among them
N_COMPUTING_HEAD = 16  # a device's calls computing, in start order (linked through R_NEXT, R_PREVIOUS), −1: none
N_COMPUTING_TAIL = 17
NODE_INT_SIZE = 18
N_BUSY_AREA = 0  # ∫ busy workers dt (ms), up to N_AREA_AT
N_QUEUE_AREA = 1  # ∫ waiting requests dt (ms)
N_AREA_AT = 2
N_WORK = 3  # least work: the mean service of the requests its router sent it and has not heard back from
NODE_FLOAT_SIZE = 4

# per router (one per partition), int64 ``routers_int[router, ...]``; its uniforms are ``uniforms[router]``
RT_FIRST = 0  # its first replica (its replicas are consecutive nodes)
RT_COUNT = 1
RT_TURN = 2  # round robin's turn
RT_UNIFORM = 3  # next uniform
RT_UNIFORMS = 4  # uniforms buffered
ROUTER_INT_SIZE = 5

# per request slot, int64 ``slots_int[slot, ...]`` and float64 ``slots_float[slot, ...]``
R_ID = 0
R_CLASS = 1
R_NODE = 2
R_NEXT = 3  # the next slot in its waiting line, −1: last
R_PUSH = 4  # its push number at its node (EDF's tie-break)
R_KEY = 5
R_PREVIOUS = 6  # the previous slot in its waiting line, −1: first
R_EVENT = 7  # on a device: the sequence of its completion event (others were cancelled)
SLOT_INT_SIZE = 8
R_ARRIVAL = 0
R_DEADLINE = 1  # absolute
R_START = 2
R_SERVICE = 3
R_NODE_ARRIVAL = 4
R_NETWORK = 5  # network delays so far
R_REMAINING = 6  # on a sharing device: compute still to do alone, as of R_PROGRESS
R_PROGRESS = 7
SLOT_FLOAT_SIZE = 8

# output rows: int64 ``out_int[field, row]``, float64 ``out_float[field, row]``
O_ID = 0
O_CLASS = 1
O_NODE = 2
O_DROP = 3
O_KEY = 4
OUT_INT_SIZE = 5
O_ARRIVAL = 0
O_START = 1
O_SERVICE = 2
O_END = 3
O_NODE_ARRIVAL = 4
O_NETWORK = 5
OUT_FLOAT_SIZE = 6


@njit(cache=True)
def advance(state, settings, now_ms, heap_time, heap_int, nodes_int, nodes_float, line_head, line_tail, line_of,
            relative_deadline_ms, droppable, mean_service_ms, slots_int, slots_float, free, gaps_ms, gap_classes,
            requirements_ms, stream_position, stream_length, stream_ended, routers_int, uniforms, keys, key_partitions,
            delays_ms, call_factors,
            overhead_multipliers, slowdown_table, overhead_table, device_slowdown, out_int, out_float, mark_id, mark_ms,
            mark_areas):
    """Process events until Python is needed (the return codes above); ``now_ms[0]`` is the clock.

    Stream s's pending arrival is its buffer entry ``stream_position[s]`` (gap, class, requirement
    per node spec); ``stream_ended[s]``: nothing follows its last buffered entry. ``key_partitions[k]``:
the partition of ``keys[k]``. ``delays_ms[k]``:
    network stream k's delays; ``call_factors[n]`` and ``overhead_multipliers[n]``: node n's next
    calls' speed factors and overhead multipliers; ``slowdown_table[n, k]`` and ``overhead_table[n, k]``:
    its slowdown factor and mean overhead at occupancy k (the last entry holds beyond); ``device_slowdown[n, k]``:
its device's compute-time factor with k calls computing (1 for k = 0). The helpers are
    closures over the arrays, which numba inlines: no array crosses a call (no reference counting).
    """

    def move(source, target):
        """Copy heap entry ``source`` to ``target``; ``heap_int[i]`` = (sequence, kind, stream or node, slot)."""
        heap_time[target] = heap_time[source]
        for field in range(4):
            heap_int[target, field] = heap_int[source, field]

    def push(time, kind, node, slot):
        """Schedule an event, after every event already scheduled for the same time."""
        sequence = state[S_SEQUENCE]
        state[S_SEQUENCE] = sequence + 1
        i = state[S_HEAP]
        state[S_HEAP] = i + 1
        while i > 0:
            parent = (i - 1) >> 1
            if heap_time[parent] < time or (heap_time[parent] == time and heap_int[parent, 0] < sequence):
                break
            move(parent, i)
            i = parent
        heap_time[i] = time
        heap_int[i, 0] = sequence
        heap_int[i, 1] = kind
        heap_int[i, 2] = node
        heap_int[i, 3] = slot

    def pop():
        """Remove the earliest event (the root); the caller read it first."""
        size = state[S_HEAP] - 1
        state[S_HEAP] = size
        if size == 0:
            return
        time = heap_time[size]
        sequence = heap_int[size, 0]
        i = 0
        while True:
            child = 2 * i + 1
            if child >= size:
                break
            right = child + 1
            if right < size and (
                heap_time[right] < heap_time[child]
                or (heap_time[right] == heap_time[child] and heap_int[right, 0] < heap_int[child, 0])
            ):
                child = right
            if time < heap_time[child] or (time == heap_time[child] and sequence < heap_int[child, 0]):
                break
            move(child, i)
            i = child
        move(size, i)

    def accumulate(node, now):
        """``Node._advance``: integrate busy workers and waiting requests up to ``now``."""
        elapsed = now - nodes_float[node, N_AREA_AT]
        if elapsed != 0.0:
            nodes_float[node, N_BUSY_AREA] += nodes_int[node, N_BUSY] * elapsed
            nodes_float[node, N_QUEUE_AREA] += nodes_int[node, N_WAITING] * elapsed
            nodes_float[node, N_AREA_AT] = now

    def finish(slot, now, drop):
        """A request is served or dropped: the router hears of it, a run-zone request becomes an output row."""
        request_id = slots_int[slot, R_ID]
        node = slots_int[slot, R_NODE]
        if settings[C_ROUTER] != DIRECT:
            nodes_int[node, N_IN_FLIGHT] -= 1
            if settings[C_ROUTER] == LEAST_WORK:
                nodes_float[node, N_WORK] = max(nodes_float[node, N_WORK] - mean_service_ms[node, slots_int[slot, R_CLASS]], 0.0)
        if request_id < settings[C_MEASURED]:
            row = state[S_OUT]
            out_int[O_ID, row] = request_id
            out_int[O_CLASS, row] = slots_int[slot, R_CLASS]
            out_int[O_NODE, row] = node
            out_int[O_DROP, row] = drop
            out_int[O_KEY, row] = slots_int[slot, R_KEY]
            out_float[O_ARRIVAL, row] = slots_float[slot, R_ARRIVAL]
            out_float[O_NODE_ARRIVAL, row] = slots_float[slot, R_NODE_ARRIVAL]
            out_float[O_NETWORK, row] = slots_float[slot, R_NETWORK]
            out_float[O_START, row] = slots_float[slot, R_START] if drop == SERVED else -1.0
            out_float[O_SERVICE, row] = slots_float[slot, R_SERVICE] if drop == SERVED else 0.0
            out_float[O_END, row] = now
            state[S_OUT] = row + 1
            state[S_ZONE_DONE] += 1
        state[S_PENDING] += 1
        free[state[S_FREE]] = slot
        state[S_FREE] += 1

    def retime(node, before_count, after_count, now, leaving):
        """``StagedExecutor._reschedule``: the calls computing go from ``before_count`` to ``after_count``; every
        one that goes on (not ``leaving``) counts its progress at the old pace and is due anew at the new one."""
        before = device_slowdown[node, before_count]
        after = device_slowdown[node, after_count]
        if before == after:
            return
        slot = nodes_int[node, N_COMPUTING_HEAD]
        while slot >= 0:
            if slot != leaving:
                remaining = slots_float[slot, R_REMAINING] - (now - slots_float[slot, R_PROGRESS]) / before
                slots_float[slot, R_REMAINING] = remaining
                slots_float[slot, R_PROGRESS] = now
                slots_int[slot, R_EVENT] = state[S_SEQUENCE]
                push(now + max(remaining, 0.0) * after, COMPLETION, node, slot)
            slot = slots_int[slot, R_NEXT]

    def computed(node, slot, now):
        """``StagedExecutor.end_compute`` and ``Execution._done``: the others re-timed, the call leaves the device,
        its service time is the time it took."""
        if nodes_int[node, N_DEVICE] == 2:
            computing = nodes_int[node, N_BUSY]
            retime(node, computing, computing - 1, now, slot)
        before, after = slots_int[slot, R_PREVIOUS], slots_int[slot, R_NEXT]
        if before < 0:
            nodes_int[node, N_COMPUTING_HEAD] = after
        else:
            slots_int[before, R_NEXT] = after
        if after < 0:
            nodes_int[node, N_COMPUTING_TAIL] = before
        else:
            slots_int[after, R_PREVIOUS] = before
        slots_float[slot, R_SERVICE] = now - slots_float[slot, R_START]

    def start(node, slot, now):
        """``Node._start_one``: a worker takes the request; its completion is scheduled after the call's time
        on this machine (``CallTime``: × speed factor × slowdown at the occupancy + overhead at it)."""
        nodes_int[node, N_BUSY] += 1
        slots_float[slot, R_START] = now
        service = slots_float[slot, R_SERVICE]
        occupancy = nodes_int[node, N_BUSY] + nodes_int[node, N_WAITING]
        call = nodes_int[node, N_CALL]
        draws = False
        if nodes_int[node, N_SPEED]:
            service *= call_factors[node, call]
            draws = True
        points = nodes_int[node, N_SLOWDOWN_POINTS]
        if points:
            service *= slowdown_table[node, min(occupancy, points - 1)]
        overhead = nodes_int[node, N_OVERHEAD]
        if overhead:
            mean = overhead_table[node, min(occupancy, nodes_int[node, N_OVERHEAD_POINTS] - 1)]
            if overhead == 2:
                service += mean * overhead_multipliers[node, call]
                draws = True
            else:
                service += mean
        if draws:
            nodes_int[node, N_CALL] = call + 1
            state[S_CALLS_LEFT] -= 1
        slots_float[slot, R_SERVICE] = service
        if nodes_int[node, N_DEVICE] == 0:
            push(now + service, COMPLETION, node, slot)
            return
        computing = nodes_int[node, N_BUSY]  # ``StagedExecutor.begin_compute``: every busy worker computes
        if nodes_int[node, N_DEVICE] == 2:
            retime(node, computing - 1, computing, now, -1)
        tail = nodes_int[node, N_COMPUTING_TAIL]
        slots_int[slot, R_PREVIOUS] = tail
        slots_int[slot, R_NEXT] = -1
        if tail < 0:
            nodes_int[node, N_COMPUTING_HEAD] = slot
        else:
            slots_int[tail, R_NEXT] = slot
        nodes_int[node, N_COMPUTING_TAIL] = slot
        slots_float[slot, R_REMAINING] = service
        slots_float[slot, R_PROGRESS] = now
        slots_int[slot, R_EVENT] = state[S_SEQUENCE]
        push(now + service * device_slowdown[node, computing], COMPLETION, node, slot)

    def take(node):
        """The discipline's next waiting request, out of its line: FIFO's only line, the most urgent priority
        level's, or (EDF: a line per class, each in deadline order) the line whose head has the earliest
        deadline (ties: queued first)."""
        discipline = nodes_int[node, N_DISCIPLINE]
        line = 0
        if discipline == PRIORITY:
            while line_head[node, line] < 0:
                line += 1
        elif discipline == EDF:
            line = -1
            for candidate in range(line_head.shape[1]):
                head = line_head[node, candidate]
                if head < 0:
                    continue
                if line >= 0:
                    best = line_head[node, line]
                    if slots_float[head, R_DEADLINE] > slots_float[best, R_DEADLINE] or (
                        slots_float[head, R_DEADLINE] == slots_float[best, R_DEADLINE]
                        and slots_int[head, R_PUSH] > slots_int[best, R_PUSH]
                    ):
                        continue
                line = candidate
        slot = line_head[node, line]
        after = slots_int[slot, R_NEXT]
        line_head[node, line] = after
        if after < 0:
            line_tail[node, line] = -1
        else:
            slots_int[after, R_PREVIOUS] = -1
        return slot

    def dispatch(node, now):
        """``Node._dispatch``: free workers take waiting requests; admission control drops those not worth serving."""
        while nodes_int[node, N_BUSY] < nodes_int[node, N_WORKERS] and nodes_int[node, N_WAITING] > 0:
            slot = take(node)
            accumulate(node, now)
            nodes_int[node, N_WAITING] -= 1
            admission = nodes_int[node, N_ADMISSION]
            if admission != ADMIT_ALL:
                request_class = slots_int[slot, R_CLASS]
                deadline = slots_float[slot, R_DEADLINE]
                if admission == DROP_EXPIRED:
                    admitted = now < deadline or not droppable[request_class]
                else:
                    admitted = now + mean_service_ms[node, request_class] <= deadline or not droppable[request_class]
                if not admitted:
                    finish(slot, now, DEADLINE)
                    continue
            start(node, slot, now)

    def submit(node, slot, now):
        """``Node.submit``: start at once, drop (full queue) or wait; False when the queue outgrew its limit."""
        slots_float[slot, R_NODE_ARRIVAL] = now
        if nodes_int[node, N_ADMISSION] == ADMIT_ALL and nodes_int[node, N_BUSY] < nodes_int[node, N_WORKERS]:
            accumulate(node, now)
            start(node, slot, now)
            return True
        capacity = nodes_int[node, N_CAPACITY]
        if 0 <= capacity <= nodes_int[node, N_WAITING] and nodes_int[node, N_BUSY] == nodes_int[node, N_WORKERS]:
            finish(slot, now, QUEUE_FULL)
            return True
        accumulate(node, now)
        line = line_of[node, slots_int[slot, R_CLASS]]
        slots_int[slot, R_PUSH] = nodes_int[node, N_PUSHES]
        nodes_int[node, N_PUSHES] += 1
        before = line_tail[node, line]  # EDF: a line is in deadline order (a network leg reorders the arrivals)
        if nodes_int[node, N_DISCIPLINE] == EDF:
            while before >= 0 and slots_float[before, R_DEADLINE] > slots_float[slot, R_DEADLINE]:
                before = slots_int[before, R_PREVIOUS]
        after = line_head[node, line] if before < 0 else slots_int[before, R_NEXT]
        if before < 0:
            line_head[node, line] = slot
        else:
            slots_int[before, R_NEXT] = slot
        if after < 0:
            line_tail[node, line] = slot
        else:
            slots_int[after, R_PREVIOUS] = slot
        slots_int[slot, R_PREVIOUS] = before
        slots_int[slot, R_NEXT] = after
        nodes_int[node, N_WAITING] += 1
        if nodes_int[node, N_WAITING] > settings[C_MAX_QUEUE]:
            state[S_INFO] = node
            return False
        if nodes_int[node, N_BUSY] < nodes_int[node, N_WORKERS]:
            dispatch(node, now)
        return True

    def uniform(router):
        position = routers_int[router, RT_UNIFORM]
        routers_int[router, RT_UNIFORM] = position + 1
        state[S_UNIFORMS_LEFT] -= 1
        return uniforms[router, position]

    def load(node):
        """What a load-aware router compares: its unanswered requests, or (least work) their mean service."""
        if settings[C_ROUTER] == LEAST_WORK:
            return nodes_float[node, N_WORK]
        return float(nodes_int[node, N_IN_FLIGHT])

    def route(router, request_class):
        """The router's choice among its replicas (``model/router.py``), its uniforms taken in the same order."""
        policy = settings[C_ROUTER]
        if policy == DIRECT:
            return 0
        first = routers_int[router, RT_FIRST]
        count = routers_int[router, RT_COUNT]
        if policy == ROUND_ROBIN:
            routers_int[router, RT_TURN] += 1
            node = first + routers_int[router, RT_TURN] % count
        elif policy == RANDOM:
            node = first + int(uniform(router) * count)
        elif policy == POWER_OF_TWO:
            node = first + int(uniform(router) * count)
            if count > 1:
                second = first + (node - first + 1 + int(uniform(router) * (count - 1))) % count
                if load(second) < load(node) or load(second) == load(node) and int(uniform(router) * 2) == 1:
                    node = second  # a tie takes a uniform, as ``Router._least``
        else:  # SHORTEST_QUEUE, LEAST_WORK: the least loaded, ties at random (``Router._least``)
            lowest = load(first)
            tied = 0
            for candidate in range(first, first + count):
                if load(candidate) < lowest:
                    lowest, tied = load(candidate), 0
                tied += load(candidate) == lowest
            pick = int(uniform(router) * tied) if tied > 1 else 0
            node = first
            while load(node) != lowest or pick > 0:
                pick -= load(node) == lowest
                node += 1
        nodes_int[node, N_IN_FLIGHT] += 1
        if policy == LEAST_WORK:
            nodes_float[node, N_WORK] += mean_service_ms[node, request_class]
        return node

    def delay(leg):
        """The next delay of network stream ``leg``."""
        position = state[S_DELAY + 2 * leg]
        state[S_DELAY + 2 * leg] = position + 1
        return delays_ms[leg, position]

    def mark(request_id, now):
        """Record every node's busy and queue integrals at this arrival (``Node.areas``)."""
        index = state[S_MARKS]
        mark_id[index] = request_id
        mark_ms[index] = now
        for node in range(nodes_int.shape[0]):
            elapsed = now - nodes_float[node, N_AREA_AT]
            mark_areas[index, node, 0] = nodes_float[node, N_BUSY_AREA] + nodes_int[node, N_BUSY] * elapsed
            mark_areas[index, node, 1] = nodes_float[node, N_QUEUE_AREA] + nodes_int[node, N_WAITING] * elapsed
        state[S_MARKS] = index + 1

    measured = settings[C_MEASURED]
    if state[S_STARTED] == 0:
        state[S_STARTED] = 1
        for stream in range(gaps_ms.shape[0]):
            if stream_length[stream] > 0:
                push(now_ms[0] + gaps_ms[stream, 0], ARRIVAL, stream, 0)
    out_rows = out_int.shape[1]
    request_leg = settings[C_REQUEST_LEG]
    response_leg = settings[C_RESPONSE_LEG]
    while True:
        if state[S_HEAP] == 0:
            return EMPTY
        if state[S_HEAP] + settings[C_HEAP_ROOM] > heap_time.shape[0]:
            return HEAP_FULL
        if state[S_CALLS_LEFT] < 1:
            return NEED_INPUT
        for leg in range(2):
            if (request_leg == leg or response_leg == leg) and state[S_DELAY + 2 * leg] >= state[S_DELAYS + 2 * leg]:
                return NEED_INPUT
        if heap_int[0, 1] == ARRIVAL:
            stream = heap_int[0, 2]
            if stream_position[stream] + 1 >= stream_length[stream] and not stream_ended[stream]:
                return NEED_INPUT
            if state[S_UNIFORMS_LEFT] < settings[C_UNIFORMS_PER_ARRIVAL] or state[S_KEY] >= state[S_KEYS]:
                return NEED_INPUT
            if state[S_FREE] == 0:
                return POOL_FULL
            if state[S_OUT] + 1 > out_rows:
                return OUT_FULL
        elif state[S_OUT] + 1 + nodes_int[heap_int[0, 2], N_WAITING] > out_rows:
            return OUT_FULL  # a completion's request and those admission drops, or a request reaching its node
        now = heap_time[0]
        sequence = heap_int[0, 0]
        kind = heap_int[0, 1]
        node = heap_int[0, 2]
        slot = heap_int[0, 3]
        pop()
        now_ms[0] = now
        if kind == COMPLETION:
            if nodes_int[node, N_DEVICE]:
                if sequence != slots_int[slot, R_EVENT]:
                    continue  # re-timed: this one fires into nothing, as a cancelled SimPy event
                computed(node, slot, now)
            accumulate(node, now)
            nodes_int[node, N_BUSY] -= 1
            if response_leg >= 0:
                wait = delay(response_leg)
                slots_float[slot, R_NETWORK] += wait
                push(now + wait, RESPONSE, node, slot)
            else:
                finish(slot, now, SERVED)
            if nodes_int[node, N_WAITING] > 0 and nodes_int[node, N_BUSY] < nodes_int[node, N_WORKERS]:
                dispatch(node, now)
            continue
        if kind == RESPONSE:
            finish(slot, now, SERVED)
            continue
        if kind == REACH:
            if not submit(node, slot, now):
                return UNSTABLE
            continue
        stream = node
        entry = stream_position[stream]
        request_id = state[S_NEXT_ID]
        state[S_NEXT_ID] = request_id + 1
        request_class = gap_classes[stream, entry]
        if request_id < measured and (request_id == state[S_NEXT_MARK] or request_id == measured - 1):
            mark(request_id, now)
            if request_id == state[S_NEXT_MARK]:
                state[S_NEXT_MARK] += settings[C_MARK_EVERY]
        key = -1
        router = 0
        if settings[C_KEYS]:
            key = keys[state[S_KEY]]
            if settings[C_PARTITIONED]:
                router = key_partitions[state[S_KEY]]
            state[S_KEY] += 1
        node = route(router, request_class)
        state[S_FREE] -= 1
        slot = free[state[S_FREE]]
        slots_int[slot, R_ID] = request_id
        slots_int[slot, R_CLASS] = request_class
        slots_int[slot, R_NODE] = node
        slots_int[slot, R_KEY] = key
        slots_float[slot, R_ARRIVAL] = now
        slots_float[slot, R_DEADLINE] = now + relative_deadline_ms[request_class]
        slots_float[slot, R_SERVICE] = requirements_ms[stream, entry, nodes_int[node, N_SPEC]]
        slots_float[slot, R_NETWORK] = 0.0
        if request_leg >= 0:
            wait = delay(request_leg)
            slots_float[slot, R_NETWORK] = wait
            push(now + wait, REACH, node, slot)
        elif not submit(node, slot, now):
            return UNSTABLE
        flush = state[S_PENDING] >= settings[C_CHUNK]
        if request_id >= measured and (request_id - measured) % settings[C_CHECK_EVERY] == 0:
            flush = True
            if state[S_ZONE_DONE] == measured:
                return STOPPED
        if flush:
            state[S_PENDING] = 0
        stream_position[stream] = entry + 1
        if entry + 1 < stream_length[stream]:
            push(now + gaps_ms[stream, entry + 1], ARRIVAL, stream, 0)
        if flush:
            return FLUSHED


@njit(cache=True)
def chain_states(cumulative, state, uniforms):
    """A Markov chain's state at each of ``len(uniforms)`` steps and after the last, from ``state``: each step
    moves to the first column whose cumulative probability exceeds its uniform (``np.searchsorted``, right)."""
    states = np.empty(len(uniforms) + 1, np.int64)
    for step in range(len(uniforms)):
        states[step] = state
        row = cumulative[state]
        state = 0
        while row[state] <= uniforms[step]:
            state += 1
    states[len(uniforms)] = state
    return states


def empty_heap(capacity: int) -> tuple[np.ndarray, np.ndarray]:
    """An event heap for ``capacity`` pending events: times, and (sequence, kind, stream or node, slot)."""
    return np.zeros(capacity), np.zeros((capacity, 4), np.int64)
