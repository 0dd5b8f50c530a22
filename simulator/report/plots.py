"""Plots of a run's monitoring time series (the frame of ``TimeSeriesRecorder``): PNG bytes for a report, or PNG files.

Figures are drawn by ``render.png`` on matplotlib's Agg canvas, never through pyplot, so no
global backend is touched and plotting works headless and from several threads.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from simulator.files import make_output_folder, write_atomically
from simulator.report.render import mark_limit, plain_log_ticks, png

TIME_AXIS = "simulated time (s)"


def _named(frame: pd.DataFrame, prefix: str) -> dict[str, pd.Series]:
    """Columns ``<prefix>.<name>`` of the frame, by name."""
    return {column[len(prefix) + 1 :]: frame[column] for column in frame.columns if column.startswith(prefix + ".")}


def timeseries_figures(frame: pd.DataFrame, title: str, deadlines_ms: dict[str, float] | None = None) -> dict[str, bytes]:
    """Throughput and drops, latency p50/p99 (with each class's deadline), queue length, utilization (and cache hit
    ratio) over time, as PNG bytes by file name (``latency.png``, ...)."""
    if frame.empty:
        raise ValueError("the time series has no windows to plot")
    edges_s = np.append(frame["window_start_s"].to_numpy(), frame["window_end_s"].to_numpy()[-1:])

    def stairs(axes: Axes, values: pd.Series, **style: object) -> None:
        axes.stairs(values.to_numpy(dtype=float), edges_s, baseline=None, **style)

    def traffic(axes: Axes) -> None:
        window_s = frame["window_end_s"] - frame["window_start_s"]
        stairs(axes, frame["arrivals"] / window_s, label="arrivals", color="0.6")
        stairs(axes, frame["throughput_per_s"], label="completions")
        for reason, drops in _named(frame, "drops").items():
            stairs(axes, drops / window_s, label=f"drops: {reason}")

    def latency(axes: Axes) -> None:
        stairs(axes, frame["latency_p50_ms"], label="p50")
        stairs(axes, frame["latency_p99_ms"], label="p99")
        for name, p99 in _named(frame, "latency_p99_ms").items():
            stairs(axes, p99, label=f"p99 {name}", linestyle="--", linewidth=0.9)
        if (frame["latency_p50_ms"] > 0).any():
            axes.set_yscale("log")
            plain_log_ticks(axes)
        for name, deadline_ms in (deadlines_ms or {}).items():
            mark_limit(axes, deadline_ms, f"deadline {name}")

    def per_node(prefix: str) -> Callable[[Axes], None]:
        def draw(axes: Axes) -> None:
            for name, values in _named(frame, prefix).items():
                stairs(axes, values, label=name)

        return draw

    def utilization(axes: Axes) -> None:
        per_node("utilization")(axes)
        axes.set_ylim(0.0, max(1.05, axes.get_ylim()[1]))

    def cache(axes: Axes) -> None:
        stairs(axes, frame["cache_hit_ratio"])
        axes.set_ylim(0.0, 1.05)

    figures = [
        ("throughput.png", "throughput and drops", "requests per s", traffic),
        ("latency.png", "latency of completions", "ms", latency),
        ("queue_length.png", "mean queue length per node", "requests waiting", per_node("queue_length")),
        ("utilization.png", "utilization per node", "busy fraction of workers", utilization),
    ]
    if "cache_hit_ratio" in frame.columns:
        figures.append(("cache_hit_ratio.png", "cache hit ratio", "hits per arrival", cache))
    return {name: png(f"{title}: {caption}", TIME_AXIS, ylabel, draw) for name, caption, ylabel, draw in figures}


def plot_timeseries(frame: pd.DataFrame, out_dir: Path, title: str, deadlines_ms: dict[str, float] | None = None) -> list[Path]:
    """The figures of ``timeseries_figures`` as PNG files in ``out_dir`` (created), each written atomically."""
    figures = timeseries_figures(frame, title, deadlines_ms)
    out_dir = make_output_folder(Path(out_dir))  # a file or an unwritable place there is an OutputPathError
    for name, image in figures.items():
        write_atomically(out_dir / name, lambda temporary, image=image: Path(temporary).write_bytes(image))
    return [out_dir / name for name in figures]
