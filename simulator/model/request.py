"""One inference request as it moves through the model (times in simulated ms)."""

from __future__ import annotations


class Request:
    """A request; ``deadline_ms`` is absolute (arrival + the class's relative deadline).

    ``node_index``, ``start_ms``, ``service_ms`` and ``end_ms`` are set by the node that takes
    the request (start and service when it starts or drops it, end when it finishes either way).
    """

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
        self.drop_reason = ""
