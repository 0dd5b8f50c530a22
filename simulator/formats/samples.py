"""Numbers measured elsewhere: one numeric column of a CSV or parquet file (service times, timestamps, keys)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from simulator.errors import ScenarioError


def read_sample_column(path: Path, column: str | None, what: str) -> np.ndarray:
    """Read one numeric column of a CSV or parquet file (the only column, or the one named)."""
    import pandas as pd

    if not path.is_file():
        raise ScenarioError(f"{what}: file {path} does not exist")
    try:
        frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except Exception as error:  # pandas raises many parser error types
        raise ScenarioError(f"{what}: cannot read {path} as CSV/parquet: {error}") from None
    if column is None:
        if frame.shape[1] != 1:
            raise ScenarioError(f"{what}: {path} has columns {list(frame.columns)}; name one with 'column'")
        column = frame.columns[0]
    if column not in frame.columns:
        raise ScenarioError(f"{what}: {path} has no column {column!r}; it has {list(frame.columns)}")
    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
    if len(values) == 0 or not np.all(np.isfinite(values)):
        raise ScenarioError(f"{what}: column {column!r} of {path} must hold only numbers (and at least one)")
    return values
