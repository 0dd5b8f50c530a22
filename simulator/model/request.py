"""One inference request as it moves through the model (times in simulated ms)."""

from __future__ import annotations


class Request:
    """A request; ``deadline_ms`` is absolute (arrival + the class's relative deadline)."""

    __slots__ = (
        "request_id",
        "class_index",
        "priority",
        "arrival_ms",
        "deadline_ms",
        "node_index",
        "start_ms",
        "service_ms",
        "end_ms",
        "drop_reason",
    )

    def __init__(self, request_id: int, class_index: int, priority: int, arrival_ms: float, deadline_ms: float):
        self.request_id = request_id
        self.class_index = class_index
        self.priority = priority
        self.arrival_ms = arrival_ms
        self.deadline_ms = deadline_ms
        self.node_index = -1
        self.start_ms = -1.0
        self.service_ms = 0.0
        self.end_ms = -1.0
        self.drop_reason = ""
