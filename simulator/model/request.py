"""One inference request as it moves through the model (times in simulated ms)."""

from __future__ import annotations

from collections.abc import Sequence


class Request:
    """A request; ``deadline_ms`` is absolute (arrival + the class's relative deadline).

    Fields below the constructor's are filled in along the way: by the cluster (key, network,
    cache), by the node that serves or drops it (node, start, service, batch), and at the end.
    Every request sets the slotted fields (fast to write and read, no per-request dict); the
    optional parts of the path write the others, whose class-level values are their defaults
    (an instance dict is made only for a request that sets one).
    """

    __slots__ = (
        "__dict__", "arrival_ms", "class_index", "deadline_ms", "drop_reason", "end_ms", "in_queue", "key", "node_arrival_ms",
        "node_index", "priority", "request_id", "requirement_ms", "router_index", "sent_ms", "service_ms", "start_ms",
    )

    batch_size = 1
    batch_wait_ms = 0.0
    network_ms = 0.0
    load_ms = 0.0
    copy_ms = 0.0
    cache_hit = False
    cache_ms = 0.0
    retries = 0
    stage = 0  # pipeline stage the request is at (0 without a pipeline)
    stage_record = False  # True on the copy that records a finished non-final pipeline stage
    transfer_ms = 0.0
    upstream_wait_ms = 0.0  # queueing and service at earlier pipeline stages
    upstream_service_ms = 0.0
    lost_ms = 0.0  # time spent at nodes that failed while holding it (waiting or in service)
    preempted_ms = 0.0  # time spent interrupted by more urgent requests (preemptive priority)
    remaining_ms = 0.0  # service still owed after a preemption (resume)
    segment_start_ms = 0.0  # when its current stretch of (preemptible) service began
    due_ms = 0.0  # when that stretch ends; after an interruption, when it was interrupted
    delayed = False  # timed out with the delay action: served after every request that has not

    def __init__(
        self,
        request_id: int,
        class_index: int,
        priority: int,
        arrival_ms: float,
        deadline_ms: float,
        requirement_ms: Sequence[float | None] = (),
    ) -> None:
        self.request_id = request_id
        self.class_index = class_index
        self.priority = priority
        self.arrival_ms = arrival_ms
        self.deadline_ms = deadline_ms
        self.node_arrival_ms = arrival_ms
        self.requirement_ms = requirement_ms  # its service time at each node spec (drawn at arrival; None: at the node)
        self.key = -1
        self.node_index = -1
        self.start_ms = -1.0
        self.service_ms = 0.0
        self.end_ms = -1.0
        self.drop_reason = ""
        self.in_queue = False  # waiting in a node's queue now
        self.router_index = -1  # the router that sent it (its completion is reported back there)
        self.sent_ms = 0.0  # when that router sent it
