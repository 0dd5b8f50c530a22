"""The cluster: partitions of replicas behind routers, the network between them, and failures.

Requests enter through ``submit`` (key → shared cache → partition → router → network → node
cache → node) and leave through ``deliver`` (node → network → client). In a pipeline, a node of
a stage before the last hands the request over (transfer delay → the next stage's router), and
records the stage it finished as a copy. Orphans of a failed node are re-routed (to the same
stage) or counted as failed, never lost.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Sequence

from simulator.errors import LatsimError
from simulator.model.cache_tier import CacheTier
from simulator.model.failure_handling import OrphanPolicy
from simulator.model.node import Node
from simulator.model.partitioning import Partitioner
from simulator.model.pipeline import Pipeline
from simulator.model.request import Request
from simulator.model.router import Router
from simulator.model.simulation import Due, Environment


class Cluster:
    """Routes requests to nodes and results back; ``finished`` receives every finished request."""

    def __init__(
        self,
        *,
        env: Environment,
        partitions: Sequence[Sequence[Node]],
        routers: Sequence[Router],
        partitioner: Partitioner | None,
        request_delay_ms: Iterator[float] | None,
        response_delay_ms: Iterator[float] | None,
        finished: list[Request],
        orphan_policy: OrphanPolicy,
        cache: CacheTier | None = None,
        pipeline: Pipeline | None = None,
    ) -> None:
        self.env = env
        self.partitions = [list(nodes) for nodes in partitions]
        self.nodes = [node for nodes in self.partitions for node in nodes]
        self.routers = list(routers)
        self.partitioner = partitioner
        self.request_delay_ms = request_delay_ms  # network: router → node (None: none)
        self.response_delay_ms = response_delay_ms  # network: node → client (None: none)
        self.finished = finished
        self.orphan_policy = orphan_policy
        self.cache = cache
        self.stages = 1 if pipeline is None else pipeline.stages
        self.transfer_ms = None if pipeline is None else pipeline.transfer_ms
        direct = (
            len(self.nodes) == 1 and request_delay_ms is None and response_delay_ms is None and cache is None and pipeline is None
        )
        self.submit: Callable[[Request], None] = self.nodes[0].submit if direct else self._submit
        if direct:  # nothing to route: no router hears of sends or answers
            self.deliver: Callable[[Request], None] = finished.append
        else:
            self.deliver = self._deliver if response_delay_ms is None else self._send_back
        self._per_node_cache = cache is not None and not cache.shared
        self._to_node: Callable[[Due], None] = self._reach_cached_node if self._per_node_cache else self._reach_node
        for node in self.nodes:
            last_stage = pipeline is None or pipeline.stage_of[node.spec_name] == pipeline.stages - 1
            node.on_done = self._hand_over if not last_stage else self.deliver if cache is None else self._served
            node.on_orphans = self.orphans
        if cache is not None:
            cache.on_hit_served = finished.append if cache.shared else self.deliver

    def _submit(self, request: Request) -> None:
        """A new request: a shared cache may answer it, else it is routed."""
        if self.cache is not None and self.cache.shared and self.cache.serves(request, 0):
            return
        self._route(request)

    def _route(self, request: Request) -> None:
        partition = 0 if self.partitioner is None else self.partitioner(request.key)
        router = self.routers[partition * self.stages + request.stage]
        if not router.nodes:
            request.drop_reason = "unavailable"
            request.end_ms = self.env.now
            self.finished.append(request)
            return
        node = router.choose(request)
        try:
            chosen = router.replicas[router.slot[node.index]] is node
        except (AttributeError, KeyError, TypeError):  # None, or no node of this router (a plug-in's mistake)
            chosen = False
        if not chosen:
            raise LatsimError(f"router {type(router).__name__}: choose() returned {node!r:.80}, not one of the replicas it routes to")
        now_ms = self.env.now
        router.sent(node, request, now_ms)
        request.router_index = partition * self.stages + request.stage
        request.sent_ms = now_ms
        request.node_index = node.index
        if (self.request_delay_ms is None or request.stage) and not self._per_node_cache:
            node.submit(request)  # between pipeline stages the transfer delay replaces the network
            return
        if self.request_delay_ms is None:
            self._arrive_at_node(node, request)
        else:
            delay_ms = next(self.request_delay_ms)
            request.network_ms += delay_ms
            Due(self.env, delay_ms, request, self._to_node)

    def _reach_node(self, event: Due) -> None:
        request: Request = event.payload
        self.nodes[request.node_index].submit(request)

    def _reach_cached_node(self, event: Due) -> None:
        request: Request = event.payload
        self._arrive_at_node(self.nodes[request.node_index], request)

    def _arrive_at_node(self, node: Node, request: Request) -> None:
        """A node that is up answers from its own cache (first attempts only) or queues the request."""
        if node.available and request.retries == 0 and self.cache.serves(request, node.index):
            request.node_arrival_ms = self.env.now
            return
        node.submit(request)

    def _answered(self, request: Request) -> None:
        """The router that sent ``request`` hears that its send is over (served, dropped or failed)."""
        index = request.router_index
        if index >= 0:
            request.router_index = -1
            self.routers[index].completed(self.nodes[request.node_index], request, self.env.now)

    def _deliver(self, request: Request) -> None:
        self._answered(request)
        self.finished.append(request)

    def _hand_over(self, request: Request) -> None:
        """A stage before the last finished: record the stage, then send the request on to the next."""
        self._answered(request)
        if request.drop_reason:
            self.deliver(request)
            return
        record = copy.copy(request)
        record.stage_record = True
        self.finished.append(record)
        request.upstream_wait_ms += request.start_ms - request.node_arrival_ms
        request.upstream_service_ms += request.service_ms
        request.batch_size, request.batch_wait_ms, request.load_ms, request.copy_ms = 1, 0.0, 0.0, 0.0
        request.stage += 1
        delay_ms = next(self.transfer_ms)
        request.transfer_ms += delay_ms
        Due(self.env, delay_ms, request, self._transferred)

    def _transferred(self, event: Due) -> None:
        self._route(event.payload)

    def _served(self, request: Request) -> None:
        """A node finished a request: a computed result goes into the cache on its way out."""
        if not request.drop_reason:
            self.cache.store(request)
        self.deliver(request)

    def _send_back(self, request: Request) -> None:
        if request.drop_reason:
            self._deliver(request)
            return
        delay_ms = next(self.response_delay_ms)
        request.network_ms += delay_ms
        Due(self.env, delay_ms, request, self._arrived_back)

    def _arrived_back(self, event: Due) -> None:
        request: Request = event.payload
        request.end_ms = self.env.now
        self._deliver(request)

    def orphans(self, requests: list[Request]) -> None:
        """Requests a failed (or unavailable) node gave back: retry elsewhere or count as failed."""
        self.availability_changed()
        now_ms = self.env.now
        for request in requests:
            self._answered(request)
            if self.orphan_policy.retries(request):
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
