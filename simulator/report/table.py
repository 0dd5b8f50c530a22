"""The terminal summary of a run: one rich table per classes and nodes, fitted to the terminal's width.

A number is never cut: a table too wide for the terminal puts each interval on a line below its
estimate, and if that is still too wide it is split into several tables, each repeating the key
columns (the class, the node), so every figure is shown in full at any width down to 80 columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from simulator.metrics.collector import ALL, QUANTILES
from simulator.terminal import plain

INTERVAL_BREAK = "\x00"  # where a cell's interval may go to the next line (a space when the table fits on one)
COLUMN_OVERHEAD = 3  # a column's padding (one space each side) and its left border
FREE_TEXT_MIN_WIDTH = 24  # a column of sentences (marked free) wraps at words down to this width


@dataclass(frozen=True)
class Column:
    """A column of a terminal table: its header, alignment, and whether its text may wrap at words (a sentence)."""

    header: str
    justify: str = "right"
    free: bool = False


def _lines(cell: str) -> list[str]:
    return Text.from_markup(cell).plain.split("\n")


def _needed(column: Column, cells: Sequence[str]) -> int:
    """The width a column needs so that no number or word is cut (a free-text column: its longest line, or less, down
    to a minimum and its longest word, as it wraps at words)."""
    header = max(len(word) for word in column.header.split())
    longest = max([header, *(len(line) for cell in cells for line in _lines(cell))])
    if not column.free:
        return longest
    words = [len(word) for cell in cells for line in _lines(cell) for word in line.split()]
    return min(longest, max([FREE_TEXT_MIN_WIDTH, header, *words]))


def _groups(widths: list[int], keys: int, width: int) -> list[list[int]]:
    """Column indices per table: the key columns in each, the others packed in order while they fit ``width``."""
    base = sum(widths[:keys]) + COLUMN_OVERHEAD * keys + 1
    groups: list[list[int]] = [[]]
    used = base
    for index in range(keys, len(widths)):
        needed = widths[index] + COLUMN_OVERHEAD
        if groups[-1] and used + needed > width:
            groups.append([])
            used = base
        groups[-1].append(index)
        used += needed
    return [list(range(keys)) + group for group in groups]


def print_table(
    console: Console, title: str, columns: Sequence[Column], rows: Sequence[Sequence[str]], keys: int = 1,
    sections: Sequence[int] = (),
) -> None:
    """Print ``rows`` (rich markup; ``INTERVAL_BREAK`` where an interval may start a line) fitted to the console's width.

    ``keys``: the leading columns that name a row, repeated when the table is split; ``sections``: rows after which a rule is drawn.
    """
    for folded in (False, True):
        cells = [[cell.replace(INTERVAL_BREAK, "\n" if folded else " ") for cell in row] for row in rows]
        widths = [_needed(column, [row[index] for row in cells]) for index, column in enumerate(columns)]
        if sum(widths) + COLUMN_OVERHEAD * len(widths) + 1 <= console.width:
            break
    groups = _groups(widths, keys, console.width)
    for number, group in enumerate(groups, start=1):
        part = f" ({number} of {len(groups)})" if len(groups) > 1 else ""
        table = Table(title=title + part, title_justify="left")
        for index in group:
            column = columns[index]
            fixed = {"min_width": widths[index]} if column.free else {"width": widths[index]}  # sentences take what is left
            table.add_column(plain(column.header), justify=column.justify, overflow="fold", **fixed)
        for row_number, row in enumerate(cells):
            table.add_row(*(row[index] for index in group), end_section=row_number in sections)
        console.print(table)


def _value(stat: dict[str, Any] | None, digits: int = 2, percent: bool = False) -> str:
    """``estimate ±half-width``, or ``estimate +above/−below`` when the interval is lopsided (log-scale
    and quantile intervals are); a dash when there is no estimate. The interval may go to a line of its own."""
    if stat is None or stat["estimate"] is None:
        return "—"
    scale = 100.0 if percent else 1.0
    estimate = stat["estimate"] * scale
    text = f"{estimate:.{digits}f}"
    if stat["ci_low"] is not None and stat["ci_high"] is not None:
        above, below = stat["ci_high"] * scale - estimate, estimate - stat["ci_low"] * scale
        if abs(above - below) <= 0.25 * max(above, below, 1e-300):
            text += f"{INTERVAL_BREAK}±{(above + below) / 2:.{digits}f}"
        else:
            text += f"{INTERVAL_BREAK}+{above:.{digits}f}/−{below:.{digits}f}"
    return text


def slo_verdict(entry: dict[str, Any]) -> tuple[str | None, str]:
    """A class's SLO verdict (met, violated, inconclusive; None when not judged) and what it rests on, in words."""
    slo = entry.get("slo")
    if not slo or slo["verdict"] is None:  # a firm class without `target` states no share that must meet its deadline
        return None, "not judged: give the class a target" if entry.get("kind") == "firm" else ""
    bounds = slo["miss_probability"]
    return slo["verdict"], (
        f"miss ≤ {slo['miss_allowance']:.2g}; {slo['misses']} of {slo['finished']} missed, P(miss) ≤ {bounds['upper_bound']:.2g}"
    )


def _verdict(entry: dict[str, Any]) -> str:
    verdict, grounds = slo_verdict(entry)
    if verdict is None:
        return grounds
    colour = {"met": "green", "violated": "red", "inconclusive": "yellow"}[verdict]
    return f"[{colour}]{verdict}[/] ({grounds})"


def print_summary(summary: dict[str, Any], console: Console) -> None:
    """Latency per class (ms), real-time ratios, drops, and node utilization."""
    interval = {
        "replications": f"{summary['confidence']:.0%} CI over {summary['replications']} replications",
        "batch_means": f"{summary['confidence']:.0%} batch-means CI of one replication",
        "none": "no intervals",
    }[summary["ci_method"]]
    with_cache = "cache_hit_ratio" in summary["classes"][ALL]
    latency_columns = [Column("class", "left"), *(Column(name) for name in ("done", "dropped", "mean", *QUANTILES, "max", "wait mean"))]
    realtime_columns = [
        Column("class", "left"), Column("kind", "left"),
        *(Column(name) for name in ("deadline ms", "met deadline %", "processing/e2e %", "throughput /s", "goodput /s", "dropped %")),
        *([Column("cache hit %")] if with_cache else []), Column("SLO", "left", free=True),
    ]
    latency_rows, realtime_rows = [], []
    for name, entry in summary["classes"].items():
        lat = entry["latency_ms"]
        latency_rows.append([
            plain(name), str(entry["completed"]), str(sum(entry["dropped"].values())), _value(lat["mean"]),
            *(_value(lat[q]) for q in QUANTILES), _value(lat["max"]), _value(entry["wait_ms"]["mean"]),
        ])
        realtime_rows.append([
            plain(name),
            entry.get("kind") or "",
            f"{entry['deadline_ms']:g}" if entry.get("deadline_ms") is not None else "",
            _value(entry["deadline_met_ratio"], percent=True),
            _value(entry["processing_ratio"], percent=True),
            _value(entry["throughput_per_s"], digits=1),
            _value(entry["goodput_per_s"], digits=1),
            _value(entry["drop_ratio"], percent=True),
            *([_value(entry["cache_hit_ratio"], percent=True)] if with_cache else []),
            _verdict(entry),
        ])
    all_row = [list(summary["classes"]).index(ALL)]
    print_table(console, f"{plain(summary['scenario'])}: latency in ms (estimate and the interval's reach, {interval})",
                latency_columns, latency_rows, sections=all_row)
    print_table(console, f"real-time ratios (offered load {summary['offered_load']:.3f})", realtime_columns, realtime_rows)
    with_loads = any("model_loads" in entry for entry in summary["nodes"].values())
    node_columns = [Column("node", "left"), *(Column(name) for name in ("served", "utilization %", "mean queue length", "available %")),
                    *([Column("model loads")] if with_loads else [])]
    node_rows = [
        [plain(name), str(entry["served"]), _value(entry["utilization"], percent=True), _value(entry["mean_queue_length"]),
         _value(entry["availability"], percent=True), *([str(entry.get("model_loads", "—"))] if with_loads else [])]
        for name, entry in summary["nodes"].items()
    ]
    print_table(console, "nodes", node_columns, node_rows)
    for note in summary.get("notes", []):
        console.print(plain(f"note: {note}"), highlight=False)
    console.print(
        plain(
            f"warm-up per replication: {summary['warmup_requests']} requests "
            f"(transient found by MSER: {summary['transient_requests']})"
        ),
        highlight=False,
    )
    if not summary["quantiles_exact"]:
        console.print("quantiles above come from a REQ sketch (long run): relative rank error shrinks toward p99.9")
