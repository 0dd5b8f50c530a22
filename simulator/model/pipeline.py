"""Model-parallel pipelines: a request visits one node of every stage in order.

Each stage is a node spec (its own replicas, batching, device); between stages the request's
activations travel for a ``transfer`` delay. Every stage has its own router in each partition.
"""

from __future__ import annotations

from collections.abc import Iterator

from simulator.scenario.cluster import PipelineSpec


class Pipeline:
    """A pipeline built for one replication: each node spec's stage index and the transfer draws."""

    def __init__(self, spec: PipelineSpec, transfer_ms: Iterator[float]) -> None:
        self.stage_of = {name: stage for stage, name in enumerate(spec.stages)}
        self.stages = len(spec.stages)
        self.transfer_ms = transfer_ms
