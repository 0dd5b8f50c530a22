"""A campaign folder as data: ``campaign.json`` and the files it lists, read as untrusted input.

What analysing a campaign (``compare``, ``calibrate``, ``latsim fit``) needs of it, without the
server and the load generator that measured it (``campaign.py``). The file is checked field by
field, its run folders must lie inside the campaign's (also once symbolic links are followed), and
every valid run's table of requests and summary (and the profile's table) must be there, inside it,
with the columns a testbed run writes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import Field, ValidationError, field_validator

from simulator.files import UnusableFile, inside_folder, read_regular_file
from simulator.scenario.bounds import MAX_REQUESTS, DurationS, RatePerS
from simulator.scenario.loader import load_scenario
from simulator.scenario.schema import Scenario
from simulator.settings import Settings
from simulator.testbed.config import TestbedConfig
from simulator.testbed.errors import TestbedError, invalid
from simulator.testbed.results import DERIVED_COLUMNS, TIMESTAMPS_NS

CAMPAIGN_FILE = "campaign.json"
RUN_TABLE, RUN_SUMMARY = "requests.parquet", "run.json"  # a run's files, in its folder
PREDICTIONS_DIR = "predictions"
SNAPSHOT = "snapshot"  # the profile table's column: the snapshot a request was profiled in
MAX_CAMPAIGN_RUNS = 10_000  # levels, repeats and runs a campaign file may list
MAX_CAMPAIGN_FILE_BYTES = 50_000_000
# what the readers of a run's (and the profile's) table of requests use of it
RECORD_COLUMNS = ("request_id", "class", "status", "batch_id", "batch_size",
                  *(name.removesuffix("_ns") + "_ms" for name in TIMESTAMPS_NS), *DERIVED_COLUMNS)


def is_campaign(folder: Path) -> bool:
    """Whether ``folder`` is a campaign folder (it holds a ``campaign.json``)."""
    return (Path(folder) / CAMPAIGN_FILE).is_file()


def level_dir(level: float, repeat: int) -> str:
    """A run's folder inside its campaign's."""
    return f"level-{level:.2f}/repeat-{repeat}"


def with_workers(scenario: Scenario, workers: int | None) -> Scenario:
    """The scenario with the campaign's worker count (None: the scenario's own)."""
    return scenario if workers is None else scenario.replace("nodes[0].workers", workers)


def campaign_scenario(campaign: dict[str, Any]) -> Scenario:
    """The scenario a campaign measured (its file, with the campaign's worker count)."""
    return with_workers(load_scenario(campaign["scenario"]), campaign.get("workers"))


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
    profile_snapshots: int = Field(1, ge=1, le=MAX_CAMPAIGN_RUNS)
    runs: list[_RunEntry] = Field(max_length=MAX_CAMPAIGN_RUNS)


def read_campaign(directory: Path) -> dict[str, Any]:
    """A campaign written by ``run_campaign``; a clear error if the folder is not one (its file is read as untrusted data)."""
    path = Path(directory) / CAMPAIGN_FILE
    if not path.is_file():
        raise TestbedError(f"{directory}: no {CAMPAIGN_FILE}; run `latsim testbed run` into this folder first")
    inside_folder(directory, path, "the campaign file", TestbedError)
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
    for file in campaign_inputs(directory, campaign):
        inside_folder(directory, file, "a file the campaign lists", TestbedError)
    _check_records(profile_file(directory))
    for entry in campaign["runs"]:
        if entry["valid"]:
            _check_records(Path(directory) / entry["dir"] / RUN_TABLE)
            _check_summary(Path(directory) / entry["dir"] / RUN_SUMMARY)
    return campaign


def profile_file(directory: Path) -> Path:
    """The campaign's closed-loop profile: its table of requests."""
    return Path(directory) / "profile" / "profile.parquet"


def campaign_inputs(directory: Path, campaign: dict[str, Any]) -> list[Path]:
    """Every file of the campaign that analysing it reads: its file, the profile's table, each valid run's table and summary."""
    runs = [Path(directory) / entry["dir"] / name for entry in campaign["runs"] if entry["valid"] for name in (RUN_TABLE, RUN_SUMMARY)]
    return [Path(directory) / CAMPAIGN_FILE, profile_file(directory), *runs]


def profile_snapshots(profile: pd.DataFrame) -> pd.Series:
    """Each profiled request's snapshot (all 0 for a profile taken in one, as campaigns before snapshots were)."""
    return profile[SNAPSHOT] if SNAPSHOT in profile else pd.Series(0, index=profile.index, name=SNAPSHOT)


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
    if SNAPSHOT in names:
        snapshots = pq.read_table(path, columns=[SNAPSHOT]).column(SNAPSHOT)
        if not pa.types.is_integer(snapshots.type) or snapshots.null_count:
            raise TestbedError(f"{path}: its column {SNAPSHOT} must hold a profile snapshot's number (an integer) in every row")
    try:
        table = pq.read_table(path, columns=list(RECORD_COLUMNS))
    except (OSError, pa.ArrowException) as error:
        raise TestbedError(f"{path}: not a table of requests written by latsim testbed ({str(error)[:200]})") from None
    _check_record_values(path, table)


MAX_RECORD_MS = 1e9  # of any time in a table of requests (11 days after the run's start)
SPANS = {  # a served request's derived column → the timestamps it spans (checked to agree with them)
    "latency_ms": ("scheduled_ms", "reply_received_ms"), "server_ms": ("arrival_ms", "reply_sent_ms"),
    "wait_ms": ("enqueue_ms", "dequeue_ms"), "kernel_ms": ("kernel_start_ms", "kernel_end_ms"),
    "worker_busy_ms": ("dequeue_ms", "worker_done_ms"),
}
SERVED_ORDER = ("scheduled_ms", "send_ms", "arrival_ms", "enqueue_ms", "dequeue_ms", "kernel_start_ms", "kernel_end_ms", "worker_done_ms")


def _check_record_values(path: Path, table: pa.Table) -> None:
    """Each column of a table of requests holds what a testbed run writes there: integers, text, booleans, times that are
    finite, within bounds, ordered for a served request and agreeing with its latency parts; and some request was served."""
    kinds = {"request_id": pa.types.is_integer, "status": pa.types.is_integer, "batch_id": pa.types.is_integer,
             "batch_size": pa.types.is_integer, "class": lambda kind: pa.types.is_string(kind) or pa.types.is_large_string(kind),
             "met_deadline": pa.types.is_boolean}
    for name in RECORD_COLUMNS:
        kind = table.schema.field(name).type
        expected = kinds.get(name, pa.types.is_floating)
        if not expected(kind):
            wanted = {pa.types.is_floating: "numbers (floating point)", pa.types.is_integer: "integers", pa.types.is_boolean: "true/false"}
            raise TestbedError(f"{path}: column {name} holds {kind}, not {wanted.get(expected, 'text')}")
    frame = table.to_pandas()
    if len(frame) == 0:
        raise TestbedError(f"{path}: holds no requests")
    for name in ("request_id", "status", "class"):
        if frame[name].isna().any():
            raise TestbedError(f"{path}: column {name} is empty in row {_first(frame[name].isna())}")
    _within(path, frame, "status", 100, 599)
    _within(path, frame, "batch_size", 1, 1_000_000)
    for name in RECORD_COLUMNS:
        if pa.types.is_floating(table.schema.field(name).type):
            values = frame[name].to_numpy(dtype=float)
            low = 0.0 if name in SERVED_ORDER or name.removesuffix("_ms") + "_ns" in TIMESTAMPS_NS else -MAX_RECORD_MS
            bad = np.isinf(values) | (values < low) | (values > MAX_RECORD_MS)
            if bad.any():
                row = int(np.argmax(bad))
                raise TestbedError(f"{path}: column {name}, row {row + 1}: {values[row]:g} is not a time from {low:g} to {MAX_RECORD_MS:g} ms")
    served = frame[(frame["status"] == 200) & frame["worker_busy_ms"].notna()]
    if len(served) == 0:
        raise TestbedError(f"{path}: no request was served (status 200 with a worker's times): nothing to measure")
    for earlier, later in zip(SERVED_ORDER, SERVED_ORDER[1:]):
        wrong = served[earlier].isna() | served[later].isna() | (served[later] < served[earlier])
        if wrong.any():
            row = served.index[_first(wrong) - 1]
            raise TestbedError(f"{path}: row {row + 1}, a served request: {later} is missing or before {earlier}")
    for span, (start, end) in SPANS.items():
        empty_allowed = span == "wait_ms"  # a request a free worker takes at once waits (almost) nothing
        wrong = ~np.isclose(served[span], served[end] - served[start], rtol=1e-6, atol=1e-6) | ((served[span] <= 0) & (not empty_allowed))
        if wrong.any():
            row = served.index[_first(wrong) - 1]
            raise TestbedError(f"{path}: row {row + 1}, a served request: {span} is {served[span][row]:g}, not {end} − {start} (> 0)")


def _first(flags: pd.Series) -> int:
    """The 1-based row of the first true flag."""
    return int(np.argmax(flags.to_numpy(dtype=bool))) + 1


def _within(path: Path, frame: pd.DataFrame, name: str, low: int, high: int) -> None:
    values = frame[name].dropna()
    bad = (values < low) | (values > high)
    if bad.any():
        raise TestbedError(f"{path}: column {name} holds {values[bad].iloc[0]}, not a value from {low} to {high}")


def _check_summary(path: Path) -> None:
    """A run's summary the campaign lists is there, with the worker utilization its report shows."""
    try:
        summary = json.loads(read_regular_file(path, MAX_CAMPAIGN_FILE_BYTES).decode("utf-8"))
        utilization = summary["load"]["worker_utilization"]
    except (UnusableFile, UnicodeDecodeError, json.JSONDecodeError, RecursionError, KeyError, TypeError) as error:
        raise TestbedError(f"{path}: not a run summary written by latsim testbed ({str(error)[:200]})") from None
    if utilization is not None and not isinstance(utilization, (int, float)):
        raise TestbedError(f"{path}: load.worker_utilization is not a number")
