"""Settings of the run-time events that take capacity away or add load: failures, updates, spikes."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from simulator.registry import DISRUPTIONS, PolicyConfig
from simulator.scenario.bounds import DurationS, InstantS

EventConfig = DISRUPTIONS.field()


@DISRUPTIONS.register_config
class NodeFailureEvent(PolicyConfig):
    """The named nodes fail at ``at_s`` and come back ``duration_s`` later."""

    type: Literal["failure"]
    nodes: list[str] = Field(min_length=1, max_length=10_000, description="node names or node spec names")
    at_s: InstantS
    duration_s: DurationS


@DISRUPTIONS.register_config
class RandomFailuresEvent(PolicyConfig):
    """Each named node fails after exponential up-times (mean ``mtbf_s``) and is repaired after
    exponential down-times (mean ``mttr_s``), for as long as requests keep arriving."""

    type: Literal["random_failures"]
    nodes: list[str] = Field(min_length=1, max_length=10_000, description="node names or node spec names")
    mtbf_s: float = Field(ge=1e-3, le=1e12, description="mean time between failures, 1 ms to 1e12 s")
    mttr_s: float = Field(ge=1e-3, le=1e12, description="mean time to repair, 1 ms to 1e12 s")


@DISRUPTIONS.register_config
class RollingUpdateEvent(PolicyConfig):
    """Replicas leave one at a time: each stops taking requests, finishes what it holds, reloads
    the model for ``reload_s`` and returns; the next leaves ``pause_s`` later."""

    type: Literal["rolling_update"]
    nodes: list[str] = Field(min_length=1, max_length=10_000, description="node names or node spec names, updated in this order")
    start_s: InstantS
    reload_s: DurationS = Field(description="model reload time of one replica")
    pause_s: float = Field(0.0, ge=0, le=1e9)


@DISRUPTIONS.register_config
class LoadSpikeEvent(PolicyConfig):
    """Arrivals come ``multiplier`` times faster between ``at_s`` and ``at_s + duration_s``."""

    type: Literal["load_spike"]
    at_s: InstantS
    duration_s: DurationS
    multiplier: float = Field(gt=0, le=1e6, description="how many times faster arrivals come, up to 1e6")
