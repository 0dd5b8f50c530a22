"""Numbers measured elsewhere: one numeric column of a CSV or parquet file (service times, timestamps, keys).

What is read is bounded and checked, so a data file can neither exhaust memory nor slip nonsense
into a run: the file must be a regular file of at most ``MAX_FILE_BYTES``, hold at most
``MAX_ROWS`` values, be UTF-8 text (CSV) or parquet (by the ``.parquet`` suffix), and every value
of the column must be a finite number. Whether a value makes sense for its use (a negative service
time, a key above the catalog) is the caller's to check, with :func:`require_within`.

A derived column is an *expression* of column names, numbers, ``+ - * /`` and parentheses (e.g.
``latency_ms - service_ms``), parsed into a syntax tree and computed on the columns: nothing of
the text is ever run as code.
"""

from __future__ import annotations

import ast
import codecs
import operator
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pandas as pd

from simulator.errors import ScenarioError
from simulator.files import UnusableFile, open_regular_file

MAX_FILE_BYTES = 2_000_000_000  # 2 GB
MAX_ROWS = 20_000_000  # 160 MB as floats
MAX_EXPRESSION_CHARS = 1000
MAX_EXPRESSION_DEPTH = 50
_SNIFF_BYTES = 65_536
_SAMPLE_DOWN = "sample it down first (e.g. keep every k-th row)"
_OPERATORS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}
_TYPOGRAPHIC = str.maketrans({"−": "-", "×": "*", "÷": "/"})


def read_sample_column(path: Path, column: str | None, what: str) -> np.ndarray:
    """Read one numeric column of a CSV or parquet file (the only column, or the one named), as finite floats.

    ``what`` names the scenario field that uses the file (``service.empirical``); every error is a
    ScenarioError naming it, the file and, where it applies, the column and the first bad row.
    """
    frame = read_frame(path, None if column is None else [column], what)
    if column is None:
        if frame.shape[1] != 1:
            raise ScenarioError(f"{what}: {path} has columns {_names(frame.columns)}; name one with 'column'")
        column = frame.columns[0]
        if _is_number(column):  # a CSV without a header line: its first value would silently become the header
            raise ScenarioError(
                f"{what}: {path} starts with the number {_cut(column, 40)} where a header line belongs; "
                "add a header line naming the column (e.g. latency_ms)"
            )
    _require_columns(frame, [column], path, what)
    return finite_numbers(frame[column], path, column, what)


def expression_columns(expression: str) -> tuple[str, ...]:
    """The column names an expression uses, each once; ValueError if it is not one of
    column names, numbers, + - * / (or − × ÷), unary minus and parentheses."""
    names: list[str] = []
    for node in ast.walk(_parse(expression)):
        if isinstance(node, ast.Name) and node.id not in names:
            names.append(node.id)
    return tuple(names)


def read_sample_expression(path: Path, expression: str, what: str) -> np.ndarray:
    """The values of ``expression`` computed row by row on the columns of a CSV or parquet file, as finite floats.

    Each column used must hold finite numbers; a row where the expression itself is not finite
    (a division by zero) is named in the ScenarioError.
    """
    try:
        tree = _parse(expression)
    except ValueError as error:
        raise ScenarioError(f"{what}: expression {_cut(expression, 80)!r}: {error}") from None
    names = expression_columns(expression)
    frame = read_frame(path, list(names), what)
    _require_columns(frame, names, path, what)
    columns = {name: finite_numbers(frame[name], path, name, what) for name in names}
    with np.errstate(all="ignore"):
        values = np.broadcast_to(np.asarray(_evaluate(tree.body, columns), dtype=float), (len(frame),)).copy()
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise ScenarioError(
            f"{what}: {path}, expression {_cut(expression, 80)!r}: row {bad[0] + 1} gives {values[bad[0]]:g}; "
            f"every value must be a finite number ({bad.size} of {values.size} are not)"
        )
    return values


def _parse(expression: str) -> ast.Expression:
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise ValueError(f"an expression may have at most {MAX_EXPRESSION_CHARS} characters")
    try:
        tree = ast.parse(expression.translate(_TYPOGRAPHIC), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as error:
        raise ValueError(f"not an expression of column names, numbers and + - * / ({error.__class__.__name__})") from None
    for node in ast.walk(tree):
        allowed = (
            isinstance(node, (ast.Expression, ast.Name, ast.Load, ast.USub, ast.UAdd, *_OPERATORS))
            or (isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS)
            or isinstance(node, ast.UnaryOp)
            or (isinstance(node, ast.Constant) and type(node.value) in (int, float) and _finite(node.value))
        )
        if not allowed:
            raise ValueError(
                f"{_cut(ast.unparse(node) if isinstance(node, ast.expr) else type(node).__name__, 60)!r} is not allowed: "
                "use column names, numbers, + - * / and parentheses"
            )
    if not any(isinstance(node, ast.Name) for node in ast.walk(tree)):
        raise ValueError("the expression names no column")
    if _depth(tree.body) > MAX_EXPRESSION_DEPTH:
        raise ValueError(f"the expression nests more than {MAX_EXPRESSION_DEPTH} operations deep")
    return tree


def _finite(number: float) -> bool:
    try:
        return bool(np.isfinite(float(number)))
    except OverflowError:
        return False


def _depth(node: ast.expr) -> int:
    """Operations from the root to the deepest leaf, without recursion (so no input can exhaust the stack)."""
    deepest, pending = 0, [(node, 0)]
    while pending:
        current, depth = pending.pop()
        deepest = max(deepest, depth)
        pending += [(child, depth + 1) for child in ast.iter_child_nodes(current) if isinstance(child, ast.expr)]
    return deepest


def _evaluate(node: ast.expr, columns: dict[str, np.ndarray]) -> np.ndarray | float:
    if isinstance(node, ast.Name):
        return columns[node.id]
    if isinstance(node, ast.Constant):
        return float(node.value)
    if isinstance(node, ast.UnaryOp):
        value = _evaluate(node.operand, columns)
        return -value if isinstance(node.op, ast.USub) else value
    assert isinstance(node, ast.BinOp)  # _parse allows nothing else
    return _OPERATORS[type(node.op)](_evaluate(node.left, columns), _evaluate(node.right, columns))


def read_frame(path: Path, columns: list[str] | None, what: str) -> pd.DataFrame:
    try:
        handle = open_regular_file(path, MAX_FILE_BYTES)
    except UnusableFile as reason:
        raise ScenarioError(f"{what}: {path} {reason}") from None
    with handle:
        return _read_parquet(handle, path, columns, what) if path.suffix == ".parquet" else _read_csv(handle, path, what)


def _require_columns(frame: pd.DataFrame, columns: list[str] | tuple[str, ...], path: Path, what: str) -> None:
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise ScenarioError(f"{what}: {path} has no column {missing[0]!r}; it has {_names(frame.columns)}")


def require_within(
    values: np.ndarray, low: float, high: float, path: Path, column: str | None, what: str, *, zero_allowed: bool = False
) -> np.ndarray:
    """``values`` if all lie in [``low``, ``high``] (or are 0, when ``zero_allowed``); else a ScenarioError
    naming the file, column, first bad row and the range.

    For the caller that knows what the numbers mean: e.g. service times in [1e-6, 1e9] ms.
    """
    outside = np.flatnonzero(((values < low) | (values > high)) & ~((values == 0) & zero_allowed))
    if outside.size:
        row = int(outside[0])
        name = "its only column" if column is None else f"column {column!r}"
        raise ScenarioError(
            f"{what}: {path}, {name}: row {row + 1} holds {values[row]:g}; values here must {'be 0 or ' if zero_allowed else ''}lie in [{low:g}, {high:g}] "
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


def _read_parquet(handle: BinaryIO, path: Path, columns: list[str] | None, what: str) -> pd.DataFrame:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(handle)
        rows = parquet.metadata.num_rows
        if rows > MAX_ROWS:
            raise ScenarioError(f"{what}: {path} has {rows:,} rows, more than the limit of {MAX_ROWS:,} rows; {_SAMPLE_DOWN}")
        names = parquet.schema_arrow.names
        wanted = columns if columns and set(columns) <= set(names) else None  # only the columns used (else all, for the message)
        return parquet.read(columns=wanted).to_pandas()
    except (pa.ArrowException, OSError, ValueError, TypeError) as error:
        raise ScenarioError(f"{what}: cannot read {path} as parquet: {_cut(error)}") from None


def finite_numbers(series: pd.Series, path: Path, column: Any, what: str) -> np.ndarray:
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
