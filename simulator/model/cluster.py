"""The cluster: partitions of replicas behind routers, the network between them, and failures.

Requests enter through ``submit`` (key → partition → router → network → node) and leave through
``deliver`` (node → network → client). Orphans of a failed node are re-routed or counted as
failed, never lost.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import simpy

from simulator.model.events import Due
from simulator.model.node import Node
from simulator.model.partitioning import Partitioner
from simulator.model.request import Request
from simulator.model.router import Router


class Cluster:
    """Routes requests to nodes and results back; ``finished`` receives every finished request."""

    def __init__(
        self,
        env: simpy.Environment,
        partitions: Sequence[Sequence[Node]],
        routers: Sequence[Router],
        partitioner: Partitioner | None,
        network_delay_ms: Iterator[float] | None,
        finished: list[Request],
        retry_orphans: bool,
        max_retries: int,
    ) -> None:
        self.env = env
        self.partitions = [list(nodes) for nodes in partitions]
        self.nodes = [node for nodes in self.partitions for node in nodes]
        self.routers = list(routers)
        self.partitioner = partitioner
        self.network_delay_ms = network_delay_ms
        self.finished = finished
        self.retry_orphans = retry_orphans
        self.max_retries = max_retries
        self.submit: Callable[[Request], None] = (
            self.nodes[0].submit if len(self.nodes) == 1 and network_delay_ms is None else self._route
        )
        self.deliver: Callable[[Request], None] = finished.append if network_delay_ms is None else self._send_back
        for node in self.nodes:
            node.on_done = self.deliver
            node.on_orphans = self.orphans

    def _route(self, request: Request) -> None:
        partition = 0 if self.partitioner is None else self.partitioner(request.key)
        router = self.routers[partition]
        if not router.nodes:
            request.drop_reason = "unavailable"
            request.end_ms = self.env._now
            self.finished.append(request)
            return
        node = router.choose(request)
        if self.network_delay_ms is None:
            node.submit(request)
        else:
            delay_ms = next(self.network_delay_ms)
            request.network_ms += delay_ms
            Due(self.env, delay_ms, request, node.receive)

    def _send_back(self, request: Request) -> None:
        if request.drop_reason:
            self.finished.append(request)
            return
        delay_ms = next(self.network_delay_ms)
        request.network_ms += delay_ms
        Due(self.env, delay_ms, request, self._arrived_back)

    def _arrived_back(self, event: Due) -> None:
        request: Request = event._value
        request.end_ms = self.env._now
        self.finished.append(request)

    def orphans(self, requests: list[Request]) -> None:
        """Requests a failed (or unavailable) node gave back: retry elsewhere or count as failed."""
        self.availability_changed()
        now_ms = self.env._now
        for request in requests:
            if self.retry_orphans and request.retries < self.max_retries:
                request.retries += 1
                self._route(request)
            else:
                request.drop_reason = "node_failure"
                request.start_ms = -1.0
                request.service_ms = 0.0
                request.end_ms = now_ms
                self.finished.append(request)

    def availability_changed(self) -> None:
        for router in self.routers:
            router.refresh()
