"""Model-parallel pipelines: a request visits one node of every stage in order.

Each stage is a node spec (its own replicas, batching, device); between stages the request's
activations travel for a ``transfer`` delay. Every stage has its own router in each partition.
"""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import BaseModel, ConfigDict, Field

from simulator.service import SERVICE_MODELS

ServiceConfig = SERVICE_MODELS.config_type()


class PipelineSpec(BaseModel):
    """The scenario's ``pipeline`` section: node specs in visiting order, and the hop between them."""

    model_config = ConfigDict(extra="forbid")
    stages: list[str] = Field(min_length=2, description="node spec names, first stage first; every node spec is a stage")
    transfer: ServiceConfig = Field(description="time to move a request's activations to the next stage, in ms")


class Pipeline:
    """A pipeline built for one replication: each node spec's stage index and the transfer draws."""

    def __init__(self, spec: PipelineSpec, transfer_ms: Iterator[float]) -> None:
        self.stage_of = {name: stage for stage, name in enumerate(spec.stages)}
        self.stages = len(spec.stages)
        self.transfer_ms = transfer_ms
