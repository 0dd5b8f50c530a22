"""A measurement campaign: the server a scenario describes, profiled closed-loop first (what a user
has before deploying), then measured open-loop at each load level, several times.

Load levels are fractions of the server's saturated throughput: a closed-loop run that keeps
``SATURATION_DEPTH`` requests per worker outstanding, so that the workers never wait and the event
loop, the load generator and the kernels share the machine as they do under load (the throughput
with one request per worker outstanding overstates capacity: its kernels run on a quieter machine).
Layout of the campaign folder: ``campaign.json`` (what was run, the capacity, every run's verdict),
``capacity/``, ``profile/`` (the closed-loop profile: ``profile.parquet``), and one folder per run,
``level-<level>/repeat-<r>/`` (the files of ``run.run_level``), and ``predictions/``: for every level
the scenario of prediction (a), ``level-<level>/profile/profile.yaml``, and for every valid run that
of prediction (b), ``level-<level>/repeat-<r>/measured.yaml`` (``latsim run`` runs either).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import Field, ValidationError, field_validator

from simulator.files import UnusableFile, read_regular_file, write_text_atomically
from simulator.scenario.bounds import MAX_REQUESTS, DurationS, RatePerS
from simulator.scenario.loader import load_scenario
from simulator.scenario.schema import Scenario
from simulator.settings import Settings
from simulator.testbed.config import TestbedConfig
from simulator.testbed.errors import TestbedError, invalid
from simulator.testbed.results import DERIVED_COLUMNS, TIMESTAMPS_NS
from simulator.testbed.run import measure_capacity, run_level
from simulator.testbed.scenario import (
    measured_scenario,
    profile_scenario,
    testbed_config,
)

CAMPAIGN_FILE = "campaign.json"
SATURATION_DEPTH = 4  # outstanding requests per worker (and batch place) while capacity is measured
PREDICTIONS_DIR = "predictions"
PROFILE_REQUESTS = 1000
MAX_CAMPAIGN_RUNS = 10_000  # levels, repeats and runs a campaign file may list
MAX_CAMPAIGN_FILE_BYTES = 50_000_000
# what the readers of a run's (and the profile's) table of requests use of it
RECORD_COLUMNS = ("request_id", "class", "status", "batch_id", "batch_size",
                  *(name.removesuffix("_ns") + "_ms" for name in TIMESTAMPS_NS), *DERIVED_COLUMNS)
IDLE_RATE_PER_S = 1.0  # the profile run's open-loop part: a trickle, its records are not used


def level_dir(level: float, repeat: int) -> str:
    return f"level-{level:.2f}/repeat-{repeat}"


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
    capacity_requests: int = 3000,
    profile_requests: int = PROFILE_REQUESTS,
    **run_options: Any,
) -> dict[str, Any]:
    """Capacity, a closed-loop profile, then ``repeats`` runs of ``duration_s`` at every level; returns the
    campaign. ``workers`` overrides the scenario's node workers (its file is left as it is); ``run_options`` go to
    every ``run_level`` (e.g. the sender's lateness limits)."""
    if not levels or any(not 0 < level < 1 for level in levels) or repeats < 1:
        raise TestbedError("levels must lie in (0, 1) (fractions of the saturated throughput) and repeats be ≥ 1")
    scenario = _with_workers(load_scenario(scenario_path), workers)
    config = testbed_config(scenario, intra_op_threads, model_size)
    out_dir = Path(out_dir)
    depth = SATURATION_DEPTH * config.workers * config.batching.max_batch_size
    capacity = measure_capacity(config, out_dir / "capacity", requests=capacity_requests, concurrency=depth)
    run_level(  # its open-loop part is a trickle whose records are not used: no sender limits
        config, IDLE_RATE_PER_S, out_dir / "profile", requests=2, seed=seed, profile_requests=profile_requests,
        max_p99_lateness_ms=1e6, max_lateness_ms=1e6,
    )
    campaign: dict[str, Any] = {
        "scenario": str(Path(scenario_path).resolve()),
        "name": scenario.name,
        "workers": workers,
        "testbed": config.model_dump(),
        "capacity": capacity.__dict__,
        "levels": list(levels),
        "repeats": repeats,
        "duration_s": duration_s,
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


def _with_workers(scenario: Scenario, workers: int | None) -> Scenario:
    return scenario if workers is None else scenario.replace("nodes[0].workers", workers)


def campaign_scenario(campaign: dict[str, Any]) -> Scenario:
    """The scenario a campaign measured (its file, with the campaign's worker count)."""
    return _with_workers(load_scenario(campaign["scenario"]), campaign.get("workers"))


class _Capacity(Settings):
    throughput_per_s: RatePerS
    worker_limit_per_s: float = Field(ge=0, le=1e9)
    concurrency: int = Field(ge=1, le=1_000_000)
    requests: int = Field(ge=0, le=MAX_REQUESTS)
    latency_p50_ms: float = Field(ge=0, le=1e12)
    valid: bool


class _RunEntry(Settings):
    level: float = Field(gt=0, lt=1)
    repeat: int = Field(ge=0, le=MAX_CAMPAIGN_RUNS)
    rate_per_s: RatePerS
    dir: str = Field(max_length=200, description="the run's folder, inside the campaign's")
    valid: bool
    reasons: list[str] = Field(default_factory=list, max_length=100)
    warnings: list[str] = Field(default_factory=list, max_length=100)

    @field_validator("dir")
    @classmethod
    def _inside(cls, folder: str) -> str:
        if Path(folder).is_absolute() or ".." in Path(folder).parts:
            raise ValueError("a folder inside the campaign's (relative, without ..)")
        return folder


class _CampaignFile(Settings):
    scenario: str = Field(max_length=4096)
    name: str = Field(max_length=1000)
    workers: int | None = Field(None, ge=1, le=10_000)
    testbed: TestbedConfig
    capacity: _Capacity
    levels: list[Annotated[float, Field(gt=0, lt=1)]] = Field(min_length=1, max_length=MAX_CAMPAIGN_RUNS)
    repeats: int = Field(ge=1, le=MAX_CAMPAIGN_RUNS)
    duration_s: DurationS
    runs: list[_RunEntry] = Field(max_length=MAX_CAMPAIGN_RUNS)


def read_campaign(directory: Path) -> dict[str, Any]:
    """A campaign written by ``run_campaign``; a clear error if the folder is not one (its file is read as untrusted data)."""
    path = Path(directory) / CAMPAIGN_FILE
    if not path.is_file():
        raise TestbedError(f"{directory}: no {CAMPAIGN_FILE}; run `latsim testbed run` into this folder first")
    try:
        data = json.loads(read_regular_file(path, MAX_CAMPAIGN_FILE_BYTES).decode("utf-8"))
    except UnusableFile as reason:
        raise TestbedError(f"{path}: cannot use this campaign file: it {reason}") from None
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise TestbedError(f"{path}: not a campaign file ({str(error)[:200]})") from None
    try:
        campaign = _CampaignFile.model_validate(data).model_dump()
    except ValidationError as error:
        raise invalid(error, f"{path}: not a campaign file (written by latsim testbed run)") from None
    _check_records(Path(directory) / "profile" / "profile.parquet")
    for entry in campaign["runs"]:
        if entry["valid"]:
            _check_records(Path(directory) / entry["dir"] / "requests.parquet")
            _check_summary(Path(directory) / entry["dir"] / "run.json")
    return campaign


def _check_records(path: Path) -> None:
    """A table of requests the campaign lists is there, readable, with the columns a testbed run writes."""
    if not path.is_file():
        raise TestbedError(f"{path}: missing, though the campaign lists it (moved or deleted?)")
    try:
        names = set(pq.read_schema(path).names)
    except (OSError, pa.ArrowException) as error:
        raise TestbedError(f"{path}: not a table of requests written by latsim testbed ({str(error)[:200]})") from None
    missing = [name for name in RECORD_COLUMNS if name not in names]
    if missing:
        raise TestbedError(f"{path}: lacks the columns {', '.join(missing[:5])} a testbed run writes")


def _check_summary(path: Path) -> None:
    """A run's summary the campaign lists is there, with the worker utilization its report shows."""
    try:
        summary = json.loads(read_regular_file(path, MAX_CAMPAIGN_FILE_BYTES).decode("utf-8"))
        utilization = summary["load"]["worker_utilization"]
    except (UnusableFile, UnicodeDecodeError, json.JSONDecodeError, RecursionError, KeyError, TypeError) as error:
        raise TestbedError(f"{path}: not a run summary written by latsim testbed ({str(error)[:200]})") from None
    if utilization is not None and not isinstance(utilization, (int, float)):
        raise TestbedError(f"{path}: load.worker_utilization is not a number")
