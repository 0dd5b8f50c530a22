"""A run's output folder: summary, tidy statistics, the monitoring time series (records are written by the run).

A folder is never presented as a complete run when it is not one: :func:`prepare_run_folder`
removes the files of a previous run and writes a marker file ``INCOMPLETE`` before the simulation
starts; :func:`write_run_outputs` removes the marker after the last file is written. An
interrupted or failed run leaves the marker and none of the previous run's files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from simulator.files import OutputPathError, make_output_folder, write_atomically, write_text_atomically
from simulator.runner.result import RunResult
from simulator.scenario.schema import Scenario

RUN_FILES = ("summary.json", "stats.csv", "requests.parquet", "timeseries.csv", "timeseries.parquet")
INCOMPLETE = "INCOMPLETE"
_INCOMPLETE_TEXT = (
    "latsim is writing this run's files, or was stopped before it finished: the files here are not a complete run.\n"
    "This marker is removed when the last file is written.\n"
)


def prepare_run_folder(out: Path) -> None:
    """Before the simulation: create ``out``, mark it INCOMPLETE, remove the files of a previous run."""
    make_output_folder(out)
    write_text_atomically(out / INCOMPLETE, _INCOMPLETE_TEXT)
    for name in RUN_FILES:
        try:
            (out / name).unlink(missing_ok=True)
        except OSError as error:
            raise OutputPathError(f"{out / name}: cannot remove the previous run's file: {error.strerror or error}") from None


def write_run_outputs(result: RunResult, out: Path) -> list[Path]:
    """Write summary.json, stats.csv and timeseries.csv/.parquet into ``out``, then drop the INCOMPLETE marker.

    Returns every file of the run there (``requests.parquet`` is written by the run itself).
    """
    result.write_json(out / "summary.json")
    write_text_atomically(out / "stats.csv", result.to_frame().to_csv(index=False))
    timeseries = result.timeseries
    write_text_atomically(out / "timeseries.csv", timeseries.to_csv(index=False))
    write_atomically(out / "timeseries.parquet", lambda path: timeseries.to_parquet(path, index=False))
    (out / INCOMPLETE).unlink(missing_ok=True)
    return [out / name for name in RUN_FILES if (out / name).exists()]


def scenario_record(scenario: Scenario) -> dict[str, Any]:
    """What a report shows of the scenario: name, description, source path, the file as written (None when it is no
    readable text file) and every parameter as validated (YAML, defaults included)."""
    source = Path(scenario.source)
    try:
        text = source.read_text(encoding="utf-8") if source.is_file() else None
    except (OSError, UnicodeDecodeError):
        text = None
    return {
        "name": scenario.name, "description": scenario.description, "source": str(source), "text": text,
        "parameters_yaml": yaml.safe_dump(scenario.model_dump(mode="json"), sort_keys=False, allow_unicode=True),
    }
