"""One inference request as it moves through the model (times in simulated ms)."""

from __future__ import annotations


class Request:
    """A request; ``deadline_ms`` is absolute (arrival + the class's relative deadline).

    Fields below the constructor's are filled in along the way: by the cluster (key, network,
    cache), by the node that serves or drops it (node, start, service, batch), and at the end.
    Class-level values are the defaults of the optional parts of the path.
    """

    key = -1
    node_index = -1
    node_arrival_ms = 0.0
    start_ms = -1.0
    service_ms = 0.0
    end_ms = -1.0
    drop_reason = ""
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
    requirement_ms: list = []  # this request's service time at each node spec (drawn at arrival; None: drawn at the node)
    router_index = -1  # the router that sent it (its completion is reported back there)
    sent_ms = 0.0  # when that router sent it
    lost_ms = 0.0  # time spent at nodes that failed while holding it (waiting or in service)
    preempted_ms = 0.0  # time spent interrupted by more urgent requests (preemptive priority)
    remaining_ms = 0.0  # service still owed after a preemption (resume)
    segment_start_ms = 0.0  # when its current stretch of (preemptible) service began
    due_ms = 0.0  # when that stretch ends; after an interruption, when it was interrupted
    in_queue = False  # waiting in a node's queue now
    delayed = False  # timed out with the delay action: served after every request that has not

    def __init__(self, request_id: int, class_index: int, priority: int, arrival_ms: float, deadline_ms: float):
        self.request_id = request_id
        self.class_index = class_index
        self.priority = priority
        self.arrival_ms = arrival_ms
        self.deadline_ms = deadline_ms
        self.node_arrival_ms = arrival_ms
