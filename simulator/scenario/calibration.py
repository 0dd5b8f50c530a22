"""A calibration file: what a real server's logs said about its machine, as node settings, and where it came from.

``latsim calibrate`` (or ``latsim testbed calibrate``) writes it; a node names it
(``nodes[].calibration``), and so does a plan's hardware option. It holds the overhead curve, the
profile's drift, and per measured load level the speed process, the concurrency slowdown (more
than one worker) and the time outside the server (a CSV file beside it), each also per run, for
prediction bands. ``fitted_on`` records what it was fitted on, so that a scenario far from that
is warned about. Read as untrusted data: every field checked, files beside it only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError

from simulator.errors import CalibrationError
from simulator.scenario.bounds import RatePerS
from simulator.scenario.nodes import DeviceSpec, OverheadSpec, SpeedSpec
from simulator.settings import Settings

FORMAT_VERSION = 1
MAX_LEVELS = 1000  # levels in a calibration file, and runs per level
MAX_LIST = 10_000
DRIFT_QUANTILES = 2


class FittedOn(Settings):
    """What a calibration was fitted on; a scenario outside it is warned about."""

    date: str = Field("", max_length=100, description="when it was fitted (ISO 8601)")
    method: Literal["server_side", "client_side", "testbed"] = Field(
        "testbed", description="server_side: from the server's own times; client_side: by simulation from the client's latencies"
    )
    server: str = Field("", max_length=1000, description="the server or hardware the logs came from")
    reference: str = Field("", max_length=1000, description="the service model the speed factors are relative to")
    workers: int | None = Field(None, ge=1, le=1_000_000)
    discipline: str = Field("", max_length=100)
    batching: bool = False
    classes: list[Annotated[str, Field(max_length=1000)]] = Field(default_factory=list, max_length=MAX_LIST)
    rate_per_s: list[Annotated[float, Field(ge=0, le=1e9)]] = Field(
        default_factory=list, max_length=2, description="lowest and highest offered rate of the logged runs"
    )
    logs: list[Annotated[str, Field(max_length=4096)]] = Field(default_factory=list, max_length=MAX_LIST)
    requests: int = Field(0, ge=0, le=10**12)


class MachineSettings(Settings):
    """A calibrated machine as a calibration file holds it: node settings and the time outside the server."""

    speed: SpeedSpec
    device: DeviceSpec | None = None
    outside: dict[str, Any] = Field(description="a service-time model of the time outside the server (the network's response leg)")


class CalibratedLevel(MachineSettings):
    level: float = Field(gt=0, le=1e3)
    rate_per_s: RatePerS
    runs: list[MachineSettings] = Field(default_factory=list, max_length=MAX_LEVELS)


class CalibrationFile(Settings):
    """The whole file."""

    format_version: Literal[1] = FORMAT_VERSION
    fitted_on: FittedOn = Field(default_factory=FittedOn)
    overhead: OverheadSpec
    profile_drift: list[Annotated[float, Field(gt=0, le=1e3)]] = Field(default_factory=list, max_length=DRIFT_QUANTILES)
    levels: list[CalibratedLevel] = Field(min_length=1, max_length=MAX_LEVELS)


@dataclass(frozen=True)
class MachineAt:
    """The calibrated machine at one load level (its mean offered rate): ``main`` from its runs together,
    ``variants`` by source of uncertainty: ``runs`` one per run, ``drift`` one per end of the profile's
    drift. Each is node settings ``overhead``, ``speed``, ``outside`` and, with more than one worker, ``device``."""

    level: float
    rate_per_s: float
    main: dict[str, Any]
    variants: dict[str, list[dict[str, Any]]]


def read_calibration(path: Path) -> dict[str, Any]:
    """A calibration file, checked field by field (a CalibrationError names the file and the field); the outside
    times' files are resolved beside it and must lie in its folder."""
    from simulator.scenario.loader import read_yaml

    path = Path(path)
    data = read_yaml(path, "calibration", CalibrationError)
    try:
        calibration = CalibrationFile.model_validate(data).model_dump(exclude_unset=False)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(top)'}: {e['msg']}" for e in error.errors()[:10])
        raise CalibrationError(f"{path}: not a calibration (write it with latsim calibrate): {problems}") from None
    folder = path.resolve().parent
    for index, level in enumerate(calibration["levels"]):
        level["outside"] = _outside_beside(level["outside"], folder, path, f"levels[{index}].outside")
        for run, machine in enumerate(level["runs"]):
            machine["outside"] = _outside_beside(machine["outside"], folder, path, f"levels[{index}].runs[{run}].outside")
    return calibration


def _outside_beside(model: dict[str, Any], folder: Path, path: Path, field: str) -> dict[str, Any]:
    """An outside-time model whose ``file`` is resolved against the calibration's folder (and must stay in it)."""
    if "file" not in model:
        return model
    if not isinstance(model["file"], str):
        raise CalibrationError(f"{path}: {field}.file: a file name beside the calibration")
    resolved = (folder / model["file"]).resolve()
    if not resolved.is_relative_to(folder):
        raise CalibrationError(f"{path}: {field}.file {model['file'][:200]!r} lies outside the calibration's folder {folder}")
    return model | {"file": str(resolved)}


def machine_settings(machine: dict[str, Any]) -> dict[str, Any]:
    """The node settings of a calibrated machine (speed and, with more than one worker, the device's slowdown)."""
    return {key: machine[key] for key in ("speed", "device") if machine.get(key) is not None}


def machine_at(calibration: dict[str, Any], rate_per_s: float) -> MachineAt:
    """The calibration of the measured level whose offered rate is nearest ``rate_per_s``."""
    nearest = min(calibration["levels"], key=lambda entry: abs(entry["rate_per_s"] - rate_per_s))
    overhead = calibration["overhead"]
    main = {"overhead": overhead, **machine_settings(nearest), "outside": nearest["outside"]}
    drifted = [
        main | {"speed": main["speed"] | {"factors": [factor / ratio for factor in main["speed"]["factors"]]}}
        for ratio in calibration.get("profile_drift", [])
    ]
    return MachineAt(
        level=nearest["level"],
        rate_per_s=nearest["rate_per_s"],
        main=main,
        variants={
            "runs": [{"overhead": overhead, **machine_settings(run), "outside": run["outside"]} for run in nearest["runs"]],
            "drift": drifted,
        },
    )
