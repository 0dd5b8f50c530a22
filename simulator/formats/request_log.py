"""The request-log format: one row per request a real server answered (or failed), from any server.

A request log is what ``latsim calibrate`` learns a server from. latsim's testbed writes it; any
server (or its load generator) can, as parquet, CSV or JSON lines (one JSON object per line). One
file holds one run: requests sent at one load level. Times are milliseconds; the client's times
share one clock and the server's times share one clock, but the two clocks need not agree (only
differences within each side are used), so a log taken on two machines is fine.

Required: ``request_id``, ``class``, ``client_send_ms``, ``client_receive_ms``, ``status``. The
server-side columns are optional; where they are present latsim fits the server from them, else
from the client's latencies alone (by simulation). ``FORMAT_VERSION`` is the version this code
reads: a file may say which one it follows in a ``format_version`` column (parquet: also in the
schema metadata key ``latsim.request_log.version``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from simulator.errors import CalibrationError, ScenarioError
from simulator.files import UnusableFile, open_regular_file, write_atomically
from simulator.formats.samples import MAX_FILE_BYTES, MAX_ROWS, finite_numbers, read_frame

FORMAT_VERSION = 1
PARQUET_VERSION_KEY = b"latsim.request_log.version"
MAX_TIME_MS = 1e14  # about 3,000 years: Unix-epoch milliseconds fit; a reading beyond this is not in milliseconds
TIME_UNITS_PER_MS = {"ms": 1.0, "s": 1e-3, "us": 1e3, "ns": 1e6}  # what a log's times may be in, per millisecond
MAX_CLASS_CHARS = 200
OK_STATUS = (200, 300)  # HTTP-like: a status in [200, 300) is a served request; anything else failed

# name → (required, JSON type, description). Times are in ms on the side's own clock.
COLUMNS: dict[str, tuple[bool, str, str]] = {
    "request_id": (True, "string|integer", "unique within the file"),
    "class": (True, "string", "the request's class, as the scenario names it"),
    "client_send_ms": (True, "number", "client: the request was sent (client clock)"),
    "client_receive_ms": (True, "number", "client: the whole reply was read (client clock)"),
    "status": (True, "integer", "HTTP-like status: 200–299 served, anything else failed"),
    "scheduled_send_ms": (False, "number", "client: when an open-loop sender meant to send it (latency counts from here)"),
    "server_arrival_ms": (False, "number", "server: the request entered the server's queue (server clock)"),
    "dequeue_ms": (False, "number", "server: a worker took it from the queue"),
    "service_start_ms": (False, "number", "server: the model call began (the batch's call, with batching)"),
    "service_end_ms": (False, "number", "server: the model call ended"),
    "worker_free_ms": (False, "number", "server: the worker could take its next request (reply handed over); default service_end_ms"),
    "worker_id": (False, "string|integer", "which worker served it"),
    "batch_id": (False, "string|integer", "requests served by one model call share it"),
    "batch_size": (False, "integer", "requests in that call"),
    "level": (False, "number", "the load level of the run, as a fraction of capacity (runs with one level are grouped)"),
    "target_rate_per_s": (False, "number", "the offered rate the sender aimed at, requests per second"),
    "format_version": (False, "integer", f"the format's version ({FORMAT_VERSION})"),
}
REQUIRED = [name for name, (required, _, _) in COLUMNS.items() if required]
TIME_COLUMNS = [name for name, (_, kind, _) in COLUMNS.items() if name.endswith("_ms")]
SERVER_COLUMNS = ["server_arrival_ms", "dequeue_ms", "service_start_ms", "service_end_ms", "worker_free_ms"]
MIN_SERVED = 100  # a run with fewer served requests says nothing about the server's latency


@dataclass(frozen=True)
class RequestLog:
    """One run's requests, checked: ``table`` holds the known columns (times as floats, NaN where a row
    lacks an optional time), ``server_side`` whether every served request has the server's times."""

    path: Path
    table: pd.DataFrame
    server_side: bool

    @property
    def served(self) -> pd.DataFrame:
        return self.table[self.table["ok"]]

    @property
    def latency_ms(self) -> np.ndarray:
        """Each served request's latency on the client: from its scheduled send (else its send) to its reply."""
        served = self.served
        start = served["scheduled_send_ms"].fillna(served["client_send_ms"])
        return (served["client_receive_ms"] - start).to_numpy(float)

    @property
    def offered_rate_per_s(self) -> float:
        """The rate the sender aimed at (``target_rate_per_s``), else the measured rate of sends over the run."""
        if self.table["target_rate_per_s"].notna().any():
            return float(self.table["target_rate_per_s"].median())
        sends = self.table["scheduled_send_ms"].fillna(self.table["client_send_ms"]).to_numpy(float)
        span_ms = float(sends.max() - sends.min())
        return (len(sends) - 1) / span_ms * 1000.0 if span_ms > 0 else float("nan")


def read_request_log(path: Path, time_unit: str = "ms") -> RequestLog:
    """A request log file (``.parquet``, ``.csv``, ``.jsonl``/``.ndjson``), checked column by column: a
    CalibrationError names the file, the column, the first bad row and what is allowed. ``time_unit``: what the
    ``*_ms`` columns really hold (``s``, ``ms``, ``us``, ``ns``), converted to ms."""
    path = Path(path)
    if time_unit not in TIME_UNITS_PER_MS:
        raise CalibrationError(f"time unit {time_unit!r}: one of {', '.join(TIME_UNITS_PER_MS)}")
    where = f"request log {path}"
    frame = _read_json_lines(path, where) if path.suffix in (".jsonl", ".ndjson") else _read_table(path, where)
    if any(not isinstance(name, str) for name in frame.columns):
        raise CalibrationError(f"{where}: column names must be text (a header line)")
    missing = [name for name in REQUIRED if name not in frame.columns]
    if missing:
        raise CalibrationError(
            f"{where}: missing required column(s) {', '.join(missing)}; a request log needs {', '.join(REQUIRED)} "
            "(see `latsim schema --request-log`)"
        )
    if len(frame) < 2:
        raise CalibrationError(f"{where}: holds {len(frame)} request(s); a run needs at least {MIN_SERVED} served requests")
    table = pd.DataFrame(index=pd.RangeIndex(len(frame)))
    table["request_id"] = _identifiers(frame["request_id"], where, "request_id", unique=True)
    table["class"] = _class_names(frame["class"], where)
    table["status"] = _integers(frame["status"], where, "status", 0, 999)
    table["ok"] = (table["status"] >= OK_STATUS[0]) & (table["status"] < OK_STATUS[1])
    for name in TIME_COLUMNS:
        table[name] = _times(frame, name, table["ok"], where, TIME_UNITS_PER_MS[time_unit])
    for name in ("level", "target_rate_per_s"):
        table[name] = _optional_numbers(frame, name, where, 1e-9, 1e9)
    table["batch_size"] = _integers(frame["batch_size"], where, "batch_size", 1, 10_000_000) if "batch_size" in frame else np.nan
    for name in ("worker_id", "batch_id"):
        table[name] = _identifiers(frame[name], where, name, unique=False) if name in frame else None
    _check_version(frame, path, where)
    _check_order(table, where)
    served = int(table["ok"].sum())
    if served < MIN_SERVED:
        raise CalibrationError(f"{where}: {served} served request(s) (status 200–299); a run needs at least {MIN_SERVED}")
    server_side = bool(table.loc[table["ok"], ["server_arrival_ms", "dequeue_ms", "service_end_ms"]].notna().all().all())
    return RequestLog(path, table, server_side)


def write_request_log(table: pd.DataFrame, path: Path, metadata: dict[str, str] | None = None) -> None:
    """A request log as parquet (the columns of ``COLUMNS`` that ``table`` has), atomically, with its version."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = [name for name in COLUMNS if name in table.columns and name != "format_version"]
    arrow = pa.Table.from_pandas(table[columns], preserve_index=False)
    extra = {PARQUET_VERSION_KEY: str(FORMAT_VERSION).encode()} | {k.encode(): v.encode() for k, v in (metadata or {}).items()}
    arrow = arrow.replace_schema_metadata((arrow.schema.metadata or {}) | extra)
    write_atomically(Path(path), lambda temporary: pq.write_table(arrow, temporary))


def request_log_schema() -> dict[str, Any]:
    """The JSON Schema of one record (one JSON line, one CSV or parquet row) of the request-log format."""
    types = {"number": {"type": "number"}, "integer": {"type": "integer"}, "string": {"type": "string"},
             "string|integer": {"type": ["string", "integer"]}}
    properties = {name: types[kind] | {"description": text} for name, (_, kind, text) in COLUMNS.items()}
    properties["status"] |= {"minimum": 0, "maximum": 999}
    properties["format_version"] |= {"const": FORMAT_VERSION}
    properties["batch_size"] |= {"minimum": 1}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"latsim request log, version {FORMAT_VERSION}: one record per request",
        "description": __doc__.split("\n\n")[1].replace("\n", " "),
        "type": "object",
        "required": REQUIRED,
        "properties": properties,
    }


# -- reading ----------------------------------------------------------------------------------------


def _read_table(path: Path, where: str) -> pd.DataFrame:
    try:
        return read_frame(path, None, where)
    except ScenarioError as error:
        raise CalibrationError(str(error)) from None


def _read_json_lines(path: Path, where: str) -> pd.DataFrame:
    try:
        with open_regular_file(path, MAX_FILE_BYTES) as handle:
            raw = handle.read()
    except UnusableFile as reason:
        raise CalibrationError(f"{where} {reason}") from None
    records = []
    for number, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (UnicodeDecodeError, ValueError, RecursionError) as error:
            raise CalibrationError(f"{where}: line {number} is not one JSON object ({error.__class__.__name__})") from None
        if not isinstance(record, dict):
            raise CalibrationError(f"{where}: line {number} holds a {type(record).__name__}; each line is one JSON object")
        records.append(record)
        if len(records) > MAX_ROWS:
            raise CalibrationError(f"{where}: more than {MAX_ROWS:,} records; keep every k-th request")
    return pd.DataFrame.from_records(records)


def _check_version(frame: pd.DataFrame, path: Path, where: str) -> None:
    versions = set()
    if "format_version" in frame:
        versions |= set(_integers(frame["format_version"], where, "format_version", 0, 1_000_000).dropna().astype(int))
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        metadata = pq.read_schema(path).metadata or {}
        if PARQUET_VERSION_KEY in metadata:
            try:
                versions.add(int(metadata[PARQUET_VERSION_KEY]))
            except ValueError:
                versions.add(-1)
    unknown = versions - {FORMAT_VERSION}
    if unknown:
        raise CalibrationError(f"{where}: format version {sorted(unknown)[0]}; this latsim reads version {FORMAT_VERSION}")


def _times(frame: pd.DataFrame, name: str, ok: pd.Series, where: str, units_per_ms: float) -> pd.Series:
    """A time column as ms: finite and in [0, MAX_TIME_MS] where given; required times given on every served
    request, server times allowed to be missing (a request the server never saw)."""
    if name not in frame:
        return pd.Series(np.nan, index=frame.index)
    series = frame[name]
    required = COLUMNS[name][0]
    missing = series.isna().to_numpy()
    if required and missing[ok.to_numpy()].any():
        row = int(np.flatnonzero(missing & ok.to_numpy())[0])
        raise CalibrationError(f"{where}, column {name!r}: row {row + 1} is empty; every served request needs it")
    values = np.full(len(series), np.nan)
    given = ~missing
    if given.any():
        values[given] = _numbers(series[given], where, name) / units_per_ms
    bad = np.flatnonzero(given & ((values < 0) | (values > MAX_TIME_MS)))
    if bad.size:
        row = int(bad[0])
        raise CalibrationError(
            f"{where}, column {name!r}: row {row + 1} holds {values[row]:g}; times lie in [0, {MAX_TIME_MS:g}] "
            "(from any origin on the side's clock, Unix-epoch milliseconds included)"
        )
    return pd.Series(values, index=frame.index)


def _numbers(series: pd.Series, where: str, name: str) -> np.ndarray:
    try:
        return finite_numbers(series.reset_index(drop=True), where.removeprefix("request log "), name, "request log")
    except ScenarioError as error:
        raise CalibrationError(str(error)) from None


def _optional_numbers(frame: pd.DataFrame, name: str, where: str, low: float, high: float) -> pd.Series:
    if name not in frame or frame[name].isna().all():
        return pd.Series(np.nan, index=frame.index)
    values = _numbers(frame[name], where, name)
    bad = np.flatnonzero((values < low) | (values > high))
    if bad.size:
        raise CalibrationError(f"{where}, column {name!r}: row {bad[0] + 1} holds {values[bad[0]]:g}; allowed: [{low:g}, {high:g}]")
    return pd.Series(values, index=frame.index)


def _integers(series: pd.Series, where: str, name: str, low: int, high: int) -> pd.Series:
    values = _numbers(series, where, name)
    bad = np.flatnonzero((values != np.round(values)) | (values < low) | (values > high))
    if bad.size:
        raise CalibrationError(f"{where}, column {name!r}: row {bad[0] + 1} holds {values[bad[0]]:g}; allowed: integers in [{low}, {high}]")
    return pd.Series(values.astype(np.int64), index=series.index)


def _identifiers(series: pd.Series, where: str, name: str, unique: bool) -> pd.Series:
    """Identifiers as text (an integer id and its text are the same request); none empty, and unique if asked."""
    if series.isna().any():
        raise CalibrationError(f"{where}, column {name!r}: row {int(np.flatnonzero(series.isna())[0]) + 1} is empty")
    if pd.api.types.is_float_dtype(series):
        if not np.all(np.isfinite(series)) or not np.all(series == np.round(series)):
            raise CalibrationError(f"{where}, column {name!r}: identifiers are text or integers, not fractions")
        series = series.astype(np.int64)
    text = series.astype(str)
    if (text.str.len() > MAX_CLASS_CHARS).any():
        raise CalibrationError(f"{where}, column {name!r}: an identifier longer than {MAX_CLASS_CHARS} characters")
    if unique and text.duplicated().any():
        row = int(np.flatnonzero(text.duplicated().to_numpy())[0])
        raise CalibrationError(f"{where}, column {name!r}: row {row + 1} repeats id {text.iloc[row][:60]!r}; ids are unique in a run")
    return text


def _class_names(series: pd.Series, where: str) -> pd.Series:
    names = _identifiers(series, where, "class", unique=False)
    if (names.str.len() == 0).any():
        raise CalibrationError(f"{where}, column 'class': an empty class name")
    return names


def _check_order(table: pd.DataFrame, where: str) -> None:
    """Times on each side in their causal order, for every served request that gives both."""
    pairs = [
        ("client_send_ms", "client_receive_ms"), ("scheduled_send_ms", "client_receive_ms"),
        ("server_arrival_ms", "dequeue_ms"), ("dequeue_ms", "service_start_ms"),
        ("service_start_ms", "service_end_ms"), ("dequeue_ms", "service_end_ms"), ("service_end_ms", "worker_free_ms"),
    ]
    served = table[table["ok"]]
    for earlier, later in pairs:
        wrong = np.flatnonzero((served[later] < served[earlier]).to_numpy())
        if wrong.size:
            row = int(served.index[wrong[0]])
            raise CalibrationError(
                f"{where}: row {row + 1} has {later} {served[later].iloc[wrong[0]]:g} before {earlier} "
                f"{served[earlier].iloc[wrong[0]]:g}; each side's times must follow the request's path"
            )
