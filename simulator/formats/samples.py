"""Numbers measured elsewhere: one numeric column of a CSV or parquet file (service times, timestamps, keys).

What is read is bounded and checked, so a data file can neither exhaust memory nor slip nonsense
into a run: the file must be a regular file of at most ``MAX_FILE_BYTES``, hold at most
``MAX_ROWS`` values, be UTF-8 text (CSV) or parquet (by the ``.parquet`` suffix), and every value
of the column must be a finite number. Whether a value makes sense for its use (a negative service
time, a key above the catalog) is the caller's to check, with :func:`require_within`.
"""

from __future__ import annotations

import codecs
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pandas as pd

from simulator.errors import ScenarioError
from simulator.files import UnusableFile, open_regular_file

MAX_FILE_BYTES = 2_000_000_000  # 2 GB
MAX_ROWS = 20_000_000  # 160 MB as floats
_SNIFF_BYTES = 65_536
_SAMPLE_DOWN = "sample it down first (e.g. keep every k-th row)"


def read_sample_column(path: Path, column: str | None, what: str) -> np.ndarray:
    """Read one numeric column of a CSV or parquet file (the only column, or the one named), as finite floats.

    ``what`` names the scenario field that uses the file (``service.empirical``); every error is a
    ScenarioError naming it, the file and, where it applies, the column and the first bad row.
    """
    try:
        handle = open_regular_file(path, MAX_FILE_BYTES)
    except UnusableFile as reason:
        raise ScenarioError(f"{what}: {path} {reason}") from None
    with handle:
        frame = _read_parquet(handle, path, column, what) if path.suffix == ".parquet" else _read_csv(handle, path, what)
    if column is None:
        if frame.shape[1] != 1:
            raise ScenarioError(f"{what}: {path} has columns {_names(frame.columns)}; name one with 'column'")
        column = frame.columns[0]
        if _is_number(column):  # a CSV without a header line: its first value would silently become the header
            raise ScenarioError(
                f"{what}: {path} starts with the number {_cut(column, 40)} where a header line belongs; "
                "add a header line naming the column (e.g. latency_ms)"
            )
    if column not in frame.columns:
        raise ScenarioError(f"{what}: {path} has no column {column!r}; it has {_names(frame.columns)}")
    return _finite_numbers(frame[column], path, column, what)


def require_within(values: np.ndarray, low: float, high: float, path: Path, column: str | None, what: str) -> np.ndarray:
    """``values`` if all lie in [``low``, ``high``]; else a ScenarioError naming the file, column, first bad row and the range.

    For the caller that knows what the numbers mean: e.g. service times in [1e-6, 1e7] ms.
    """
    outside = np.flatnonzero((values < low) | (values > high))
    if outside.size:
        row = int(outside[0])
        name = "its only column" if column is None else f"column {column!r}"
        raise ScenarioError(
            f"{what}: {path}, {name}: row {row + 1} holds {values[row]:g}; values here must lie in [{low:g}, {high:g}] "
            f"({outside.size} of {values.size} do not)"
        )
    return values


def _read_csv(handle: BinaryIO, path: Path, what: str) -> pd.DataFrame:
    head = handle.read(_SNIFF_BYTES)
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise ScenarioError(f"{what}: {path} is UTF-16 text; save it as UTF-8 CSV")
    if b"\0" in head:
        raise ScenarioError(f"{what}: {path} is not CSV text (it holds NUL bytes); a parquet file needs the .parquet suffix")
    if not head.strip():
        raise ScenarioError(f"{what}: {path} is empty; give a header line and one value per line")
    handle.seek(0)
    try:
        frame = pd.read_csv(handle, encoding="utf-8", nrows=MAX_ROWS + 1)
    except UnicodeDecodeError as error:
        raise ScenarioError(f"{what}: {path} is not UTF-8 text (byte 0x{error.object[error.start]:02x}); save it as UTF-8 CSV") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError, OverflowError) as error:
        raise ScenarioError(f"{what}: cannot read {path} as CSV: {_cut(error)}") from None
    if len(frame) > MAX_ROWS:
        raise ScenarioError(f"{what}: {path} has more than the limit of {MAX_ROWS:,} rows; {_SAMPLE_DOWN}")
    return frame


def _read_parquet(handle: BinaryIO, path: Path, column: str | None, what: str) -> pd.DataFrame:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(handle)
        rows = parquet.metadata.num_rows
        if rows > MAX_ROWS:
            raise ScenarioError(f"{what}: {path} has {rows:,} rows, more than the limit of {MAX_ROWS:,} rows; {_SAMPLE_DOWN}")
        names = parquet.schema_arrow.names
        wanted = [column] if column in names else None  # read only the column used; otherwise the names, for the message
        return parquet.read(columns=wanted).to_pandas()
    except (pa.ArrowException, OSError, ValueError, TypeError) as error:
        raise ScenarioError(f"{what}: cannot read {path} as parquet: {_cut(error)}") from None


def _finite_numbers(series: pd.Series, path: Path, column: Any, what: str) -> np.ndarray:
    """The column as floats: every value a finite number (not text, true/false, missing, inf or NaN), at least one."""
    where = f"{what}: {path}, column {column!r}"
    if len(series) == 0:
        raise ScenarioError(f"{where}: holds no values")
    if pd.api.types.is_bool_dtype(series):
        raise ScenarioError(f"{where}: holds true/false values, not numbers")
    if not (pd.api.types.is_numeric_dtype(series) or pd.api.types.is_object_dtype(series) or pd.api.types.is_string_dtype(series)):
        raise ScenarioError(f"{where}: holds {series.dtype} values, not numbers")
    numbers = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    bad = np.flatnonzero(~np.isfinite(numbers))
    if bad.size:
        row = int(bad[0])
        raise ScenarioError(
            f"{where}: row {row + 1} holds {_cut(series.iloc[row], 40)}; every value must be a finite number "
            f"({bad.size} of {len(numbers)} are not)"
        )
    return numbers


def _is_number(name: object) -> bool:
    try:
        float(str(name))
    except ValueError:
        return False
    return True


def _names(columns: pd.Index) -> str:
    names = [str(name) for name in columns[:20]]
    return _cut(repr(names) + (f" and {len(columns) - 20} more" if len(columns) > 20 else ""), 400)


def _cut(value: object, limit: int = 300) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
