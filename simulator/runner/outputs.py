"""A run's output folder: summary, tidy statistics, the monitoring time series (records are written by the run)."""

from __future__ import annotations

from pathlib import Path

from simulator.files import write_atomically, write_text_atomically
from simulator.runner.result import RunResult


def write_run_outputs(result: RunResult, out: Path) -> list[Path]:
    """Write summary.json, stats.csv and timeseries.csv/.parquet into ``out``; returns every file of the run there."""
    result.write_json(out / "summary.json")
    write_text_atomically(out / "stats.csv", result.to_frame().to_csv(index=False))
    timeseries = result.timeseries
    write_text_atomically(out / "timeseries.csv", timeseries.to_csv(index=False))
    write_atomically(out / "timeseries.parquet", lambda path: timeseries.to_parquet(path, index=False))
    names = ("summary.json", "stats.csv", "requests.parquet", "timeseries.csv", "timeseries.parquet")
    return [out / name for name in names if (out / name).exists()]
