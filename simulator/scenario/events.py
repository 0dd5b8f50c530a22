"""Settings of the run-time events that take capacity away or add load: failures, updates, spikes."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, NonNegativeFloat, PositiveFloat

from simulator.registry import DISRUPTIONS, PolicyConfig

EventConfig = DISRUPTIONS.field()


@DISRUPTIONS.register_config
class NodeFailureEvent(PolicyConfig):
    """The named nodes fail at ``at_s`` and come back ``duration_s`` later."""

    type: Literal["failure"]
    nodes: list[str] = Field(min_length=1, description="node names or node spec names")
    at_s: NonNegativeFloat
    duration_s: PositiveFloat


@DISRUPTIONS.register_config
class RandomFailuresEvent(PolicyConfig):
    """Each named node fails after exponential up-times (mean ``mtbf_s``) and is repaired after
    exponential down-times (mean ``mttr_s``), for as long as requests keep arriving."""

    type: Literal["random_failures"]
    nodes: list[str] = Field(min_length=1, description="node names or node spec names")
    mtbf_s: PositiveFloat
    mttr_s: PositiveFloat


@DISRUPTIONS.register_config
class RollingUpdateEvent(PolicyConfig):
    """Replicas leave one at a time: each stops taking requests, finishes what it holds, reloads
    the model for ``reload_s`` and returns; the next leaves ``pause_s`` later."""

    type: Literal["rolling_update"]
    nodes: list[str] = Field(min_length=1, description="node names or node spec names, updated in this order")
    start_s: NonNegativeFloat
    reload_s: PositiveFloat = Field(description="model reload time of one replica")
    pause_s: NonNegativeFloat = 0.0


@DISRUPTIONS.register_config
class LoadSpikeEvent(PolicyConfig):
    """Arrivals come ``multiplier`` times faster between ``at_s`` and ``at_s + duration_s``."""

    type: Literal["load_spike"]
    at_s: NonNegativeFloat
    duration_s: PositiveFloat
    multiplier: PositiveFloat
