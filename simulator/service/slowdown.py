"""Concurrency slowdown of a device: how much longer a call computes while k calls share it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from simulator.errors import ScenarioError
from simulator.scenario.nodes import DeviceSpec, ProfileSlowdown
from simulator.scenario.service import ProfileService
from simulator.service.profile_backed import ProfileBacked


def slowdown_factors(device: DeviceSpec, base_dir: Path) -> list[float] | str:
    """f(1), f(2), ...: the compute-time multiplier with k calls computing at once (the last holds
    beyond), or ``"processor_sharing"`` for f(k) = k."""
    slowdown = device.concurrency_slowdown
    if isinstance(slowdown, ProfileSlowdown):
        return _profile_factors(slowdown, base_dir)
    return slowdown if isinstance(slowdown, str) else list(slowdown)


def _profile_factors(slowdown: ProfileSlowdown, base_dir: Path) -> list[float]:
    """Mean time at batch 1 with k workers over the mean alone, interpolated between the measured k."""
    settings = slowdown.model_dump()
    alone = ProfileBacked(ProfileService(distribution="profile", **settings), base_dir)
    levels = alone.concurrency_levels()
    if not levels:
        raise ScenarioError(
            f"device.concurrency_slowdown: bundle {slowdown.bundle} has no concurrent runs of {slowdown.family}/{slowdown.variant}"
        )
    alone_ms = alone.mean_ms(1)
    measured = {1: 1.0} | {
        k: ProfileBacked(ProfileService(distribution="profile", concurrency=k, **settings), base_dir).mean_ms(1) / alone_ms
        for k in levels
    }
    known = sorted(measured)
    return [float(np.interp(k, known, [measured[n] for n in known])) for k in range(1, known[-1] + 1)]
