"""Fitted-model files: what ``latsim fit`` learned from a profile bundle (or a samples file), as readable YAML.

One file holds, for a source of measured times (its path relative to the file, and its content
hash: a bundle's samples sha256 from its metadata, or a samples file's own sha256):

- ``method``: how the fits were made and chosen (estimators, families, selection rule, caveats);
- ``cells``: one per (family, variant, device, threads, concurrency, stage, batch size): the
  sample count, the chosen model (a family, or ``empirical`` when no parametric law fits the
  tail), the best parametric law as a :mod:`simulator.distributions` dict, the data's quantiles
  and tail intervals, and one line per candidate (AIC, BIC, KS, Anderson–Darling, fitted tail);
- ``groups``: one per (family, variant, device, threads, stage): the batch-size curve, the best
  batch size, the service process (autocorrelation, drift, block length, hidden Markov chain,
  how much order changes an M/G/1's p99) and the concurrency slowdown.

Reading validates all of it (format, version, every field, every law and chain), so an edited or
foreign file is refused with a :class:`FittedFileError` that names the file and the key. YAML is
read with the safe loader, aliases of mappings and lists are refused (no input can make
validation walk a "billion laughs"), and files are written atomically.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import yaml
from pydantic import Field, ValidationError, field_validator

from simulator.distributions import Distribution, LognormalHMM, from_dict
from simulator.distributions.curves import BatchCurve
from simulator.errors import ScenarioError
from simulator.files import (
    UnusableFile,
    open_regular_file,
    read_regular_file,
    write_atomically,
)
from simulator.settings import Settings, non_finite_key

FORMAT = "latsim-fitted-models"
FORMAT_VERSION = 1
MAX_FILE_BYTES = 100_000_000  # the shipped files are about 1 MB
SIGNIFICANT_DIGITS = 6  # figures are written to this many significant digits: readable and diffable
MODEL_DIGITS = 12  # the parameters of laws, chains and curves keep this many (weights still sum to 1 within 1e-9)
MODEL_KEYS = frozenset({"law", "hmm", "batch_curve"})
CELL_KEYS = ("family", "variant", "device", "threads", "concurrency", "stage", "batch_size")
GROUP_KEYS = ("family", "variant", "device", "threads", "stage")
SAMPLE_ORDER = ("worker", "sample_index")  # a cell's samples in measured order: each worker's calls in turn
EMPIRICAL = "empirical"
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's is ~10× faster; the same safe rules


class FittedFileError(ScenarioError):
    """A fitted-model file that cannot be used: the message names the file and the key."""


def _check(build: Any, data: Any, what: str) -> Any:
    """``data`` if ``build(data)`` accepts it; its ValueError becomes a validation error naming ``what``."""
    if data is not None:
        try:
            build(data)
        except (ValueError, TypeError, KeyError) as error:
            raise ValueError(f"not a valid {what}: {error}") from None
    return data


class FittedSource(Settings):
    """Where the measured times came from, and the hash that says they have not changed since."""

    kind: Literal["profile_bundle", "samples"]
    path: str = Field(description="relative to the fitted file")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    rows: int = Field(ge=1)
    hardware_id: str | None = None
    serving_threads: int | None = Field(None, ge=1)
    column: str | None = None
    expression: str | None = None


class FittedCell(Settings):
    """The fits of one cell of measured times."""

    family: str
    variant: str
    device: Literal["cpu", "cuda"]
    threads: int = Field(ge=1)
    concurrency: int = Field(ge=1)
    stage: str
    batch_size: int = Field(ge=1)
    mode: str = Field(description="the measurement the samples come from (sweep, concurrent, cold, samples)")
    samples: int = Field(ge=1)
    chosen: str = Field(description="the chosen family, or empirical")
    empirical_recommended: bool
    reason: str
    law: dict[str, Any] | None = Field(description="the best parametric law (a simulator.distributions dict), if any")
    quantiles_ms: dict[str, float]
    tail_intervals_ms: dict[str, tuple[float, float | None]] | None = Field(
        None, description="the data's p99 and p99.9 intervals (None above: too few samples to bound it)"
    )
    candidates: list[dict[str, Any]] = Field(default_factory=list)

    @field_validator("law")
    @classmethod
    def _a_law(cls, law: dict[str, Any] | None) -> dict[str, Any] | None:
        return _check(from_dict, law, "distribution")

    def key(self) -> tuple:
        return tuple(getattr(self, name) for name in CELL_KEYS)

    def distribution(self) -> Distribution | None:
        return None if self.law is None else from_dict(self.law)


class FittedProcess(Settings):
    """The service process measured by one ordered run: dependence, drift, and the models that keep it."""

    source_mode: str
    samples: int = Field(ge=1)
    autocorrelation: list[float]
    drift: dict[str, float]
    block_length: dict[str, float]
    hmm: dict[str, Any] | None = Field(None, description="the chosen lognormal hidden Markov chain")
    hmm_candidates: list[dict[str, Any]] = Field(default_factory=list)
    order_matters: dict[str, Any] | None = None

    @field_validator("hmm")
    @classmethod
    def _a_chain(cls, hmm: dict[str, Any] | None) -> dict[str, Any] | None:
        return _check(LognormalHMM.from_dict, hmm, "lognormal_hmm")

    def chain(self) -> LognormalHMM | None:
        return None if self.hmm is None else LognormalHMM.from_dict(self.hmm)


class FittedGroup(Settings):
    """What holds across the batch sizes (and concurrency) of one model's stage: batch curve, process, slowdown."""

    family: str
    variant: str
    device: Literal["cpu", "cuda"]
    threads: int = Field(ge=1)
    stage: str
    batch_curve: dict[str, Any] | None = None
    best_batch: dict[str, Any] | None = None
    process: FittedProcess | None = None
    slowdown: dict[str, Any] | None = None

    @field_validator("batch_curve")
    @classmethod
    def _a_curve(cls, curve: dict[str, Any] | None) -> dict[str, Any] | None:
        return _check(BatchCurve.from_dict, curve, "batch curve")

    def key(self) -> tuple:
        return tuple(getattr(self, name) for name in GROUP_KEYS)

    def curve(self) -> BatchCurve | None:
        return None if self.batch_curve is None else BatchCurve.from_dict(self.batch_curve)


class FittedModels(Settings):
    """A whole fitted-model file."""

    format: Literal["latsim-fitted-models"] = FORMAT
    format_version: Literal[1] = FORMAT_VERSION
    created_utc: str
    latsim_version: str
    source: FittedSource
    method: dict[str, Any]
    cells: list[FittedCell]
    groups: list[FittedGroup]

    def group(self, cell: FittedCell) -> FittedGroup | None:
        """The group a cell belongs to (None when the file has none for it)."""
        key = tuple(getattr(cell, name) for name in GROUP_KEYS)
        return next((group for group in self.groups if group.key() == key), None)


def rounded(value: Any, digits: int = SIGNIFICANT_DIGITS) -> Any:
    """``value`` with every float (in nested dicts, lists and tuples) rounded to ``digits`` significant digits
    (the models under :data:`MODEL_KEYS` to :data:`MODEL_DIGITS`)."""
    if isinstance(value, (float, np.floating)):
        number = float(value)
        return number if number == 0 or not math.isfinite(number) else float(f"{number:.{digits}g}")
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, Mapping):
        return {key: rounded(item, MODEL_DIGITS if key in MODEL_KEYS else digits) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [rounded(item, digits) for item in value]
    return value


def write_fitted(path: Path, models: FittedModels) -> None:
    """Write ``models`` as YAML (block style, leaf mappings on one line), atomically."""
    data = rounded(models.model_dump(mode="python"))
    text = yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=160, allow_unicode=True)
    try:
        _validated(yaml.load(text, Loader=_SAFE_LOADER), path)  # noqa: S506  (the safe loader)
    except FittedFileError as error:  # a fit gave a value no reader accepts (an infinity, NaN): write nothing
        raise FittedFileError(f"{error}; not written") from None
    write_atomically(Path(path), lambda target: target.write_text(text, encoding="utf-8"))


def read_fitted(path: Path) -> FittedModels:
    """Read and validate a fitted-model file; every problem is a FittedFileError naming the file and the key."""
    try:
        raw = read_regular_file(path, MAX_FILE_BYTES)
    except UnusableFile as reason:
        raise FittedFileError(f"fitted file {path}: {reason}") from None
    try:
        data = yaml.load(raw.decode("utf-8"), Loader=_SAFE_LOADER)  # noqa: S506  (the safe loader)
    except UnicodeDecodeError:
        raise FittedFileError(f"fitted file {path}: not UTF-8 text") from None
    except (yaml.YAMLError, RecursionError) as error:
        raise FittedFileError(f"fitted file {path}: not valid YAML ({str(error)[:200]})") from None
    if _aliased(data):
        raise FittedFileError(f"fitted file {path}: YAML aliases (*name) are not allowed here")
    return _validated(data, path)


def _validated(data: Any, path: Path) -> FittedModels:
    """Loaded YAML checked to be a fitted-model file of this version, every value valid and finite."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise FittedFileError(f"fitted file {path}: not a latsim fitted-model file (format is {found!r:.80}, expected {FORMAT!r})")
    if data.get("format_version") != FORMAT_VERSION:
        raise FittedFileError(
            f"fitted file {path}: format version {data.get('format_version')!r:.40}, but this latsim reads version "
            f"{FORMAT_VERSION}; refit with this latsim (latsim fit)"
        )
    bad = non_finite_key(data)
    if bad is not None:
        raise FittedFileError(f"fitted file {path}: {bad} is not a finite number")
    try:
        return FittedModels.model_validate(data)
    except ValidationError as error:
        problems = [f"{_location(problem['loc'])}: {problem['msg']}" for problem in error.errors()[:10]]
        more = f" (and {error.error_count() - 10} more)" if error.error_count() > 10 else ""
        raise FittedFileError(f"fitted file {path}: invalid ({'; '.join(problems)}{more})") from None


def _aliased(data: Any) -> bool:
    """Whether a mapping or list appears twice in loaded YAML: an alias, which could make validation walk it
    exponentially often (a "billion laughs"); the writer never makes one."""
    seen: set[int] = set()
    pending = [data]
    while pending:
        node = pending.pop()
        if isinstance(node, (dict, list)):
            if id(node) in seen:
                return True
            seen.add(id(node))
            pending.extend(node.values() if isinstance(node, dict) else node)
    return False


def _location(location: tuple) -> str:
    text = ""
    for step in location:
        text += f"[{step}]" if isinstance(step, int) else f".{step}" if text else str(step)
    return text or "(top level)"


def file_sha256(path: Path, max_bytes: int) -> str:
    """The SHA-256 of a regular file of at most ``max_bytes`` (the content hash of a samples source)."""
    digest = hashlib.sha256()
    with open_regular_file(path, max_bytes) as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def bundle_cells(frame: pd.DataFrame) -> Iterator[tuple[dict[str, Any], str, np.ndarray]]:
    """Every cell of a profile bundle's samples: (its key, its mode, its times in measured order)."""
    ordered = frame.sort_values([*CELL_KEYS, "mode", *SAMPLE_ORDER], kind="stable")
    for values, group in ordered.groupby([*CELL_KEYS, "mode"], sort=False):
        key = {name: _plain(value) for name, value in zip(CELL_KEYS, values)}
        yield key, str(values[-1]), group["latency_ms"].to_numpy()


def cell_samples(frame: pd.DataFrame, cell: FittedCell) -> np.ndarray:
    """The times of one fitted cell in a profile bundle's samples, in measured order (empty if none)."""
    mask = frame["mode"] == cell.mode
    for name in CELL_KEYS:
        mask &= frame[name] == getattr(cell, name)
    return frame[mask].sort_values(list(SAMPLE_ORDER), kind="stable")["latency_ms"].to_numpy()


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
