"""A measurement campaign: the server a scenario describes, profiled closed-loop first (what a user
has before deploying), then measured open-loop at each load level, several times.

Load levels are fractions of the server's saturated throughput: a closed-loop run that keeps
``SATURATION_DEPTH`` requests per worker outstanding, so that the workers never wait and the event
loop, the load generator and the kernels share the machine as they do under load (the throughput
with one request per worker outstanding overstates capacity: its kernels run on a quieter machine).
The profile is taken in snapshots, each by a fresh server process, one after the other: on a shared
machine one snapshot of a second or two can sit in a slow or a fast stretch (its mean kernel time
20 % from the machine's usual), and several, spread over a minute, average over the stretches and
let a prediction's band bootstrap over them.

Layout of the campaign folder: ``campaign.json`` (what was run, the capacity, every run's verdict),
``capacity/``, ``profile/`` (the closed-loop profile: ``profile.parquet``, every snapshot's requests
after its first 10 %, with its number in ``snapshot``; ``snapshot-<k>/``, each snapshot's run), one
folder per run, ``level-<level>/repeat-<r>/`` (the files of ``run.run_level``), and ``predictions/``:
for every level the scenario of prediction (a), ``level-<level>/profile/profile.yaml``, and for
every valid run that of prediction (b), ``level-<level>/repeat-<r>/measured.yaml`` (``latsim run``
runs either).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from simulator.files import write_atomically, write_text_atomically
from simulator.scenario.loader import load_scenario
from simulator.testbed.campaign_file import CAMPAIGN_FILE, PREDICTIONS_DIR, SNAPSHOT, level_dir, with_workers
from simulator.testbed.config import TestbedConfig
from simulator.testbed.errors import TestbedError
from simulator.testbed.run import measure_capacity, run_level
from simulator.testbed.scenario import (
    WARMUP_FRACTION,
    measured_scenario,
    profile_scenario,
    testbed_config,
)

SATURATION_DEPTH = 4  # outstanding requests per worker (and batch place) while capacity is measured
PROFILE_REQUESTS = 1000  # per snapshot
PROFILE_SNAPSHOTS = 5
IDLE_RATE_PER_S = 1.0  # the profile run's open-loop part: a trickle, its records are not used


def run_campaign(
    scenario_path: Path,
    levels: Sequence[float],
    repeats: int,
    out_dir: Path,
    *,
    duration_s: float = 30.0,
    seed: int = 0,
    intra_op_threads: int = 1,
    workers: int | None = None,
    model_size: str = "standard",
    server: str = "aiohttp",
    capacity_requests: int = 3000,
    profile_requests: int = PROFILE_REQUESTS,
    profile_snapshots: int = PROFILE_SNAPSHOTS,
    **run_options: Any,
) -> dict[str, Any]:
    """Capacity, a closed-loop profile (``profile_snapshots`` of ``profile_requests`` each), then ``repeats`` runs of
    ``duration_s`` at every level; returns the campaign. ``server``: the server kind (aiohttp, litserve; in the
    campaign's ``testbed`` config). ``workers`` overrides the scenario's node workers (its file is left as it is); ``run_options`` go to
    every ``run_level`` (e.g. the sender's lateness limits)."""
    if not levels or any(not 0 < level < 1 for level in levels) or repeats < 1 or profile_snapshots < 1:
        raise TestbedError(
            "levels must lie in (0, 1) (fractions of the saturated throughput), repeats and profile snapshots be ≥ 1"
        )
    scenario = with_workers(load_scenario(scenario_path), workers)
    config = testbed_config(scenario, intra_op_threads, model_size, server)
    out_dir = Path(out_dir)
    depth = SATURATION_DEPTH * config.workers * config.batching.max_batch_size
    capacity = measure_capacity(config, out_dir / "capacity", requests=capacity_requests, concurrency=depth)
    _profile(config, out_dir / "profile", profile_requests, profile_snapshots, seed)
    campaign: dict[str, Any] = {
        "scenario": str(Path(scenario_path).resolve()),
        "name": scenario.name,
        "workers": workers,
        "testbed": config.model_dump(),
        "capacity": capacity.__dict__,
        "levels": list(levels),
        "repeats": repeats,
        "duration_s": duration_s,
        "profile_snapshots": profile_snapshots,
        "runs": [],
    }
    predictions = out_dir / PREDICTIONS_DIR
    for repeat in range(repeats):  # level after level within a repeat: slow drifts of the machine spread over levels
        for level in levels:
            rate_per_s = float(level * capacity.throughput_per_s)
            result = run_level(
                config, rate_per_s, out_dir / level_dir(level, repeat), duration_s=duration_s,
                seed=seed + 1000 * repeat + round(level * 100), profile_requests=0,
                capacity_per_s=capacity.throughput_per_s, **({"harness": False} | run_options),
            )
            if result.valid:
                measured_scenario(scenario, result.out_dir, predictions / level_dir(level, repeat))
            if repeat == 0:
                profile_scenario(scenario, out_dir / "profile", rate_per_s, predictions / f"level-{level:.2f}" / "profile")
            campaign["runs"].append({
                "level": level, "repeat": repeat, "rate_per_s": rate_per_s, "dir": level_dir(level, repeat),
                "valid": result.valid, "reasons": result.summary["invalid_reasons"], "warnings": result.summary["warnings"],
            })
            write_text_atomically(out_dir / CAMPAIGN_FILE, json.dumps(campaign, indent=2))  # after every run: usable if stopped
    return campaign


def _profile(config: TestbedConfig, out_dir: Path, requests: int, snapshots: int, seed: int) -> None:
    """The closed-loop profile's snapshots, each by its own server, joined into ``out_dir/profile.parquet``
    without each one's first 10 % (its first call can take a hundred times the others)."""
    tables = []
    for snapshot in range(snapshots):
        folder = out_dir / f"snapshot-{snapshot}"
        run_level(  # its open-loop part is a trickle whose records are not used: no sender limits
            config, IDLE_RATE_PER_S, folder, requests=2, seed=seed + snapshot, profile_requests=requests,
            harness=snapshot == 0, max_p99_lateness_ms=1e6, max_lateness_ms=1e6,
        )
        table = pd.read_parquet(folder / "profile.parquet").sort_values("scheduled_ms")
        tables.append(table.iloc[int(len(table) * WARMUP_FRACTION) :].assign(**{SNAPSHOT: snapshot}))
    joined = pd.concat(tables, ignore_index=True)
    write_atomically(out_dir / "profile.parquet", lambda temporary: joined.to_parquet(temporary, index=False))
