"""A small campaign folder as ``latsim testbed run`` writes it (one valid run), for the cases that spoil it."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

RUN_DIR = "level-0.50/repeat-0"


def campaign_folder(directory: Path) -> Path:
    """A campaign file as ``latsim testbed run`` writes it (one valid run, in ``RUN_DIR``), without the runs' files."""
    from simulator.testbed.config import TestbedConfig

    config = TestbedConfig.parse({"model": {"family": "mlp", "variant": "fp32"}, "classes": [{"name": "a"}]})
    (directory / "campaign.json").write_text(json.dumps({
        "scenario": "scenario.yaml", "name": "x", "workers": None, "testbed": config.model_dump(),
        "capacity": {"throughput_per_s": 100.0, "worker_limit_per_s": 120.0, "concurrency": 4, "requests": 300,
                     "latency_p50_ms": 1.0, "valid": True},
        "levels": [0.5], "repeats": 1, "duration_s": 2.0,
        "runs": [{"level": 0.5, "repeat": 0, "rate_per_s": 50.0, "dir": RUN_DIR, "valid": True}],
    }))
    return directory


def record_columns() -> tuple[str, ...]:
    from simulator.testbed.campaign_file import RECORD_COLUMNS

    return RECORD_COLUMNS


MEASURED = Path(__file__).parent / "measured-campaign"  # a real (short) campaign's files, its run marked valid
MEASURED_RUN = "level-0.40/repeat-0"


def requests_tables(directory: Path, columns: list[str]) -> None:
    """The profile's and the run's tables of requests: the first served requests of a real run, in ``columns``
    (a column a run does not write holds 1.0)."""
    measured = pd.read_parquet(MEASURED / MEASURED_RUN / "requests.parquet").iloc[:20]
    for folder in (directory / "profile", directory / RUN_DIR):
        folder.mkdir(parents=True, exist_ok=True)
        table = pd.DataFrame({name: measured[name] if name in measured else 1.0 for name in columns})
        table.to_parquet(folder / ("profile.parquet" if folder.name == "profile" else "requests.parquet"), index=False)


def complete_campaign(directory: Path) -> Path:
    """A campaign whose every listed file is there with the columns a run writes (the rows are no real measurement)."""
    directory.mkdir(parents=True, exist_ok=True)
    campaign_folder(directory)
    requests_tables(directory, list(record_columns()))
    (directory / RUN_DIR / "run.json").write_text(json.dumps({"load": {"worker_utilization": 0.5}}))
    return directory
