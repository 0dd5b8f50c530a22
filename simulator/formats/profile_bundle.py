"""Profile bundles: the versioned file format between profiling and everything after it.

A bundle is a directory (``profiles/<hardware-id>/<name>/``) holding

- ``samples.parquet``: tidy per-call samples, one row per call and stage (see ``COLUMNS``),
  zstd-compressed;
- ``metadata.json``: format and version, the hardware and software it was measured on, the
  harness settings, one entry per model variant (parameters, FLOPs, quality cost, quantization
  backend), what was skipped and why, and the SHA-256 of ``samples.parquet``.

Loading checks all of it, so a stale, edited, truncated or foreign file is refused with a
:class:`ProfileBundleError` naming the file and the problem, never silently misread: every
metadata field latsim reads has its type checked (naming the key), both files must be regular
files (``metadata.json`` at most ``MAX_METADATA_BYTES``, ``samples.parquet`` at most
``MAX_SAMPLES_BYTES``) inside the bundle's folder once symbolic links are followed, the models'
names must each be a plain file name (they name plot files), and the samples are read from the very file whose hash was checked. This
module needs no torch: planning from shipped profiles works without it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from simulator.errors import ProfileBundleError
from simulator.files import UnusableFile, inside_folder, open_regular_file, path_component, read_regular_file, write_atomically

FORMAT = "latsim-profile-bundle"
FORMAT_VERSION = 1
SAMPLES_FILE = "samples.parquet"
METADATA_FILE = "metadata.json"
MAX_METADATA_BYTES = 50_000_000  # the shipped bundles' metadata is about 25 kB
MAX_SAMPLES_BYTES = 2_000_000_000  # the shipped bundles' samples are 1-3 MB

COLUMNS: dict[str, pa.DataType] = {
    "family": pa.string(),
    "variant": pa.string(),
    "device": pa.string(),
    "dtype": pa.string(),
    "batch_size": pa.int32(),
    "threads": pa.int16(),
    "concurrency": pa.int16(),
    "mode": pa.string(),
    "stage": pa.string(),
    "worker": pa.int16(),
    "sample_index": pa.int32(),
    "timestamp_ns": pa.int64(),
    "latency_ms": pa.float64(),
}
MODES = ("sweep", "sequence", "isolated", "concurrent", "cold")
STAGES = ("overhead", "h2d", "compute", "d2h", "end_to_end", "load", "first_call")
REQUIRED_METADATA = (
    "format",
    "format_version",
    "hardware_id",
    "hardware",
    "created_utc",
    "harness",
    "models",
    "samples",
)


@dataclass(frozen=True)
class ProfileBundle:
    """A loaded (or about to be written) bundle: the samples and their metadata."""

    samples: pd.DataFrame
    metadata: dict[str, Any]
    path: Path | None = None

    @property
    def hardware_id(self) -> str:
        return self.metadata["hardware_id"]

    def models(self) -> pd.DataFrame:
        """One row per profiled (family, variant, device): size, FLOPs and quality cost, flattened."""
        return pd.json_normalize(self.metadata["models"])

    def model_info(self, family: str, variant: str, device: str) -> dict[str, Any] | None:
        for entry in self.metadata["models"]:
            if (entry["family"], entry["variant"], entry["device"]) == (family, variant, device):
                return entry
        return None


def file_sha256(path: Path) -> str:
    with path.open("rb") as stream:
        return _sha256(stream)


def _sha256(stream: BinaryIO) -> str:
    digest = hashlib.sha256()
    for block in iter(lambda: stream.read(1 << 20), b""):
        digest.update(block)
    return digest.hexdigest()


def _arrow_table(samples: pd.DataFrame) -> pa.Table:
    missing = [column for column in COLUMNS if column not in samples.columns]
    if missing:
        raise ValueError(f"samples lack the columns {missing}")
    schema = pa.schema([(name, kind) for name, kind in COLUMNS.items()])
    return pa.Table.from_pandas(samples[list(COLUMNS)], schema=schema, preserve_index=False)


def write_bundle(directory: Path, samples: pd.DataFrame, metadata: dict[str, Any]) -> ProfileBundle:
    """Write ``samples`` and ``metadata`` as a bundle in ``directory`` (created; files replaced atomically).

    The samples file is written first and the metadata (with its hash) last, so an interrupted write
    leaves a bundle that fails its hash check rather than one that reads wrong numbers.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    table = _arrow_table(samples)
    samples_path = directory / SAMPLES_FILE
    write_atomically(
        samples_path,
        lambda path: pq.write_table(
            table,
            path,
            compression="zstd",
            compression_level=9,
            use_dictionary=[name for name, kind in COLUMNS.items() if kind == pa.string()],
            column_encoding={"timestamp_ns": "DELTA_BINARY_PACKED", "latency_ms": "BYTE_STREAM_SPLIT"},
        ),
    )
    full = {
        **metadata,
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "samples": {"file": SAMPLES_FILE, "sha256": file_sha256(samples_path), "rows": table.num_rows},
    }
    text = json.dumps(full, indent=2, sort_keys=False, default=_json_default) + "\n"
    write_atomically(directory / METADATA_FILE, lambda path: path.write_text(text, encoding="utf-8"))
    return load_bundle(directory)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _read_metadata(path: Path) -> dict[str, Any]:
    try:
        raw = read_regular_file(path, MAX_METADATA_BYTES)
    except UnusableFile as reason:
        if not path.exists():
            raise ProfileBundleError(f"{path}: missing; a profile bundle directory holds {METADATA_FILE} and {SAMPLES_FILE}") from None
        raise ProfileBundleError(f"{path}: {reason}") from None
    try:
        metadata = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ProfileBundleError(f"{path}: not UTF-8 text, so not the JSON a bundle's metadata is") from None
    except (ValueError, RecursionError) as error:  # JSONDecodeError, a 5000-digit number, nesting too deep
        raise ProfileBundleError(f"{path}: not valid JSON ({str(error)[:200]})") from None
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        found = metadata.get("format") if isinstance(metadata, dict) else type(metadata).__name__
        raise ProfileBundleError(f"{path}: not a latsim profile bundle (format is {found!r:.80}, expected {FORMAT!r})")
    version = metadata.get("format_version")
    if version != FORMAT_VERSION:
        raise ProfileBundleError(
            f"{path}: bundle format version {version!r:.40}, but this latsim reads version {FORMAT_VERSION}; "
            "re-profile with this latsim (latsim profile) or use the latsim that wrote it"
        )
    missing = [key for key in REQUIRED_METADATA if key not in metadata]
    if missing:
        raise ProfileBundleError(f"{path}: metadata lacks the keys {missing}")
    _check_metadata_types(path, metadata)
    return metadata


def _check_metadata_types(path: Path, metadata: dict[str, Any]) -> None:
    """Every metadata field latsim reads has the type it is read as; an error names the key (``hardware.cpu_model``)."""
    for key in ("hardware_id", "created_utc"):
        _field(path, metadata, key, str)
    hardware = _field(path, metadata, "hardware", dict)
    _field(path, hardware, "cpu_model", str, "hardware")
    _field(path, hardware, "cpu_cores", int, "hardware")
    _field(path, hardware, "torch", str, "hardware")
    if hardware.get("gpu") is not None:
        _field(path, _field(path, hardware, "gpu", dict, "hardware"), "name", str, "hardware.gpu")
    harness = _field(path, metadata, "harness", dict)
    if harness.get("serving_threads") is not None:
        _field(path, harness, "serving_threads", int, "harness")
    if "machine_load" in metadata:
        _field(path, metadata, "machine_load", dict)
    samples = _field(path, metadata, "samples", dict)
    name = _field(path, samples, "file", str, "samples")
    if name in ("", ".", "..") or Path(name).name != name:
        raise ProfileBundleError(
            f"{path}: samples.file {name!r:.80} is missing from the bundle directory: it must name a file inside it"
        )
    _field(path, samples, "sha256", str, "samples")
    _field(path, samples, "rows", int, "samples")
    for key, required in (("models", ("family", "variant", "device")), ("skipped", ("family", "variant", "device", "reason"))):
        if key not in metadata:  # models is required (checked above), skipped is optional
            continue
        for index, entry in enumerate(_field(path, metadata, key, list)):
            if not isinstance(entry, dict):
                raise ProfileBundleError(f"{path}: {key}[{index}] must be a mapping with {', '.join(required)}")
            for field_name in required:
                _field(path, entry, field_name, str, f"{key}[{index}]")
                if key == "models":  # their names become file names (latsim fit --plots)
                    path_component(entry[field_name], f"{path}: {key}[{index}].{field_name}", ProfileBundleError)
            for field_name, kind in (("params", int), ("flops_per_sample", NUMBER), ("quality", dict)):
                if entry.get(field_name) is not None:
                    _field(path, entry, field_name, kind, f"{key}[{index}]")


NUMBER = (int, float)
_KINDS: dict[Any, str] = {str: "text", int: "an integer", NUMBER: "a number", dict: "a mapping", list: "a list"}


def _field(path: Path, container: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str = "") -> Any:
    """``container[key]``, which must exist and be a ``kind`` (a bool is no integer); else a ProfileBundleError naming it."""
    name = f"{where}.{key}" if where else key
    if key not in container:
        raise ProfileBundleError(f"{path}: metadata lacks {name} ({_KINDS[kind]})")
    value = container[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ProfileBundleError(f"{path}: {name} must be {_KINDS[kind]}, not {type(value).__name__} {value!r:.60}")
    return value


def _check_samples(path: Path, frame: pd.DataFrame, metadata: dict[str, Any]) -> pd.DataFrame:
    missing = [column for column in COLUMNS if column not in frame.columns]
    if missing:
        raise ProfileBundleError(f"{path}: missing the columns {missing} (it has {list(frame.columns)})")
    for column, kind in COLUMNS.items():
        values = frame[column]
        numeric = pa.types.is_integer(kind) or pa.types.is_floating(kind)
        if numeric and not pd.api.types.is_numeric_dtype(values):
            raise ProfileBundleError(f"{path}: column {column!r} must be numeric, it is {values.dtype}")
        if values.isna().any():
            raise ProfileBundleError(f"{path}: column {column!r} has missing values")
    if len(frame) != metadata["samples"]["rows"]:
        raise ProfileBundleError(f"{path}: {len(frame)} rows, but metadata says {metadata['samples']['rows']}")
    latency = frame["latency_ms"].to_numpy()
    if not np.all(np.isfinite(latency)) or np.any(latency < 0):
        raise ProfileBundleError(f"{path}: latency_ms must be finite and non-negative")
    for column, allowed in (("mode", MODES), ("stage", STAGES)):
        unknown = sorted(set(frame[column].unique()) - set(allowed))
        if unknown:
            raise ProfileBundleError(f"{path}: unknown {column} values {unknown}; allowed: {list(allowed)}")
    for column in ("batch_size", "threads", "concurrency"):
        if (frame[column] < 1).any():
            raise ProfileBundleError(f"{path}: column {column!r} must be at least 1")
    declared = {(m["family"], m["variant"], m["device"]) for m in metadata["models"]}
    measured = set(frame[["family", "variant", "device"]].drop_duplicates().itertuples(index=False, name=None))
    undeclared = sorted(measured - declared)
    if undeclared:
        raise ProfileBundleError(f"{path}: samples of {undeclared} have no entry in {METADATA_FILE}")
    return frame


def load_bundle(path: Path | str) -> ProfileBundle:
    """Load and check a bundle: ``path`` is its directory or its metadata.json."""
    path = Path(path)
    directory = path.parent if path.name == METADATA_FILE else path
    if not directory.is_dir():
        raise ProfileBundleError(f"{directory}: no such profile bundle directory")
    inside_folder(directory, directory / METADATA_FILE, "the bundle's metadata", ProfileBundleError)
    metadata = _read_metadata(directory / METADATA_FILE)
    samples_path = directory / metadata["samples"]["file"]
    inside_folder(directory, samples_path, "the bundle's samples", ProfileBundleError)
    try:
        stream = open_regular_file(samples_path, MAX_SAMPLES_BYTES)
    except UnusableFile as reason:
        problem = "missing" if not samples_path.exists() else reason
        raise ProfileBundleError(f"{samples_path}: {problem} (named by {directory / METADATA_FILE})") from None
    with stream:
        found = _sha256(stream)
        if found != metadata["samples"]["sha256"]:
            raise ProfileBundleError(
                f"{samples_path}: content does not match the sha256 in {METADATA_FILE} "
                f"(expected {metadata['samples']['sha256'][:12]}…, found {found[:12]}…): "
                "the file was edited, truncated or belongs to another bundle"
            )
        stream.seek(0)
        try:
            frame = pq.read_table(stream).to_pandas()
        except (pa.ArrowException, OSError, ValueError) as error:
            raise ProfileBundleError(f"{samples_path}: cannot be read as parquet ({str(error)[:200]})") from None
    return ProfileBundle(_check_samples(samples_path, frame, metadata), metadata, directory)
