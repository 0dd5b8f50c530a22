"""Monitoring time series of one replication: traffic, latency, queue length, utilization per window.

Finished requests arrive in chunks, out of order; every statistic is kept per fixed window of
simulated time in integer accumulators, so memory grows only with the number of windows and the
frame is the same whatever order the chunks come in.

``TimeSeriesRecorder.frame()`` is wide: one row per window (index ``window``, the window number
from simulated time 0, from the first window anything happened in to the last) with columns

- ``window_start_s``, ``window_end_s``: the window's bounds in simulated seconds;
- ``arrivals``: requests that arrived in the window; ``completions``: served requests that ended
  in it; ``throughput_per_s``: completions per simulated second;
- ``drops`` and ``drops.<reason>``: dropped requests by the time they were dropped;
- ``latency_p50_ms``, ``latency_p99_ms``: end-to-end latency of the completions, from a per-window
  log-spaced histogram (see ``LatencyHistogram``); NaN where nothing completed. With more than one
  class also ``latency_p50_ms.<class>``, ``latency_p99_ms.<class>``;
- ``queue_length.<node>``: time-average number of requests waiting at the node (each request's
  ``[node arrival, node arrival + queued)`` spread exactly over the windows it overlaps);
- ``utilization.<node>``: busy worker time ``[start, start + service)`` of served requests in the
  window (a batch counted once) over workers × window length;
- ``cache_hit_ratio``: cache hits among the window's arrivals, only when the scenario has a cache.

A run's last window is usually only partly covered; rates there read low.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from simulator.metrics.collector import RequestChunk
from simulator.units import MS_PER_S, NS_PER_MS

if TYPE_CHECKING:
    import pandas as pd

TICKS_PER_MS = NS_PER_MS  # time integrals are summed in integer nanoseconds, exactly, in any order
LATENCY_LOW_MS = 0.01
LATENCY_HIGH_MS = 1e6
BINS_PER_DECADE = 25
QUANTILE_ROWS = 4096  # windows per block when reading quantiles, to bound temporaries


class LatencyHistogram:
    """Log-spaced latency bins shared by all windows.

    Bin edges are ``LATENCY_LOW_MS · r^k`` with ``r = 10^(1/bins_per_decade)`` (25 per decade:
    r ≈ 1.096, 200 bins up to ``LATENCY_HIGH_MS``). A quantile is interpolated log-linearly inside
    the bin that holds its rank, so it lies within a factor r (≈ 9.6 %) of the exact sample
    quantile (numpy's ``inverted_cdf``). Latencies outside the range are clamped into the end bins.
    """

    def __init__(self, bins_per_decade: int = BINS_PER_DECADE) -> None:
        self.bins_per_decade = bins_per_decade
        self.bins = int(round(np.log10(LATENCY_HIGH_MS / LATENCY_LOW_MS) * bins_per_decade))
        self.ratio = 10.0 ** (1.0 / bins_per_decade)

    def bin_of(self, latency_ms: np.ndarray) -> np.ndarray:
        position = np.log10(np.maximum(latency_ms, LATENCY_LOW_MS) / LATENCY_LOW_MS) * self.bins_per_decade
        return np.minimum(position.astype(np.int64), self.bins - 1)

    def quantile(self, counts: np.ndarray, q: float) -> np.ndarray:
        """Quantile ``q`` of each row of ``counts`` (rows × bins); NaN for empty rows."""
        result = np.full(len(counts), np.nan)
        for first in range(0, len(counts), QUANTILE_ROWS):
            block = counts[first : first + QUANTILE_ROWS]
            cumulative = np.cumsum(block, axis=1, dtype=np.int64)
            rank = q * cumulative[:, -1]
            filled = np.flatnonzero(cumulative[:, -1] > 0)
            bin_index = (cumulative[filled] < rank[filled, None]).sum(axis=1)
            in_bin = block[filled, bin_index]
            below = cumulative[filled, bin_index] - in_bin
            position = bin_index + (rank[filled] - below) / in_bin
            result[first + filled] = LATENCY_LOW_MS * self.ratio**position
        return result


def _grown(array: np.ndarray, rows: int, columns: int | None = None) -> np.ndarray:
    """``array`` zero-padded to ``rows`` along axis 0 (and ``columns`` along axis 1)."""
    shape = (rows, *array.shape[1:]) if columns is None else (rows, columns, *array.shape[2:])
    grown = np.zeros(shape, array.dtype)
    grown[tuple(slice(0, n) for n in array.shape)] = array
    return grown


class TimeSeriesRecorder:
    """Per-window monitoring statistics of one replication, fed chunk by chunk (see module doc).

    Memory per window: a latency histogram per class (200 int32 by default) plus a few int64 per
    node and drop reason; ten hours of 1 s windows take ~30 MB per class (up to twice that while
    the arrays, grown geometrically, have room to spare).
    """

    def __init__(
        self,
        window_ms: float,
        class_names: Sequence[str],
        node_names: Sequence[str],
        node_workers: Sequence[int],
        *,
        bins_per_decade: int = BINS_PER_DECADE,
    ) -> None:
        if not window_ms > 0:
            raise ValueError(f"window_ms must be positive, got {window_ms}")
        if len(node_names) != len(node_workers):
            raise ValueError("node_names and node_workers must have the same length")
        self.window_ms = float(window_ms)
        self.class_names = list(class_names)
        self.node_names = list(node_names)
        self.node_workers = np.asarray(node_workers, dtype=np.int64)
        self.histogram = LatencyHistogram(bins_per_decade)
        self._window_ticks = round(self.window_ms * TICKS_PER_MS)
        self._first = np.iinfo(np.int64).max  # first window touched
        self._end = 0  # one past the last window touched
        self._reasons: list[str] = []
        self._has_cache = False
        self._arrivals = np.zeros(0, np.int64)
        self._cache_hits = np.zeros(0, np.int64)
        self._drops = np.zeros((0, 0), np.int64)
        self._latency = np.zeros((0, len(self.class_names), self.histogram.bins), np.int32)
        self._queued_ticks = np.zeros((0, len(self.node_names)), np.int64)
        self._busy_ticks = np.zeros((0, len(self.node_names)), np.int64)

    def _window(self, time_ms: np.ndarray) -> np.ndarray:
        return (time_ms // self.window_ms).astype(np.int64)

    def _touch(self, windows: np.ndarray) -> None:
        """Make room for ``windows`` (grown geometrically) and widen the frame's range."""
        if not len(windows):
            return
        low, high = int(windows.min()), int(windows.max())
        if low < 0:
            raise ValueError(f"times before simulated time 0 (window {low}) cannot be recorded")
        self._first = min(self._first, low)
        self._end = max(self._end, high + 1)
        if self._end > len(self._arrivals):
            rows = max(self._end, 2 * len(self._arrivals), 64)
            self._arrivals = _grown(self._arrivals, rows)
            self._cache_hits = _grown(self._cache_hits, rows)
            self._drops = _grown(self._drops, rows)
            self._latency = _grown(self._latency, rows)
            self._queued_ticks = _grown(self._queued_ticks, rows)
            self._busy_ticks = _grown(self._busy_ticks, rows)

    def add(self, chunk: RequestChunk) -> None:
        """Fold one chunk of finished requests (served or dropped) into the windows."""
        arrival_window = self._window(chunk.arrival_ms)
        end_window = self._window(chunk.end_ms)
        self._touch(arrival_window)
        self._touch(end_window)
        size = len(self._arrivals)
        # final rows only: a pipeline also records each request's earlier stages
        self._arrivals += np.bincount(arrival_window[chunk.final], minlength=size)
        reached = chunk.node_index >= 0
        if chunk.cache_hit is not None:
            self._has_cache = True
            self._cache_hits += np.bincount(arrival_window[chunk.cache_hit], minlength=size)
            reached &= ~chunk.cache_hit  # a hit in a node's own cache takes no worker and no queue place
        self._add_drops(chunk, end_window)
        self._add_latency(chunk, end_window)
        served = reached & ~chunk.dropped
        queue_start_ms = chunk.node_arrival_ms[reached]
        self._add_intervals(
            self._queued_ticks, queue_start_ms, queue_start_ms + chunk.queued_ms[reached], chunk.node_index[reached], 1.0
        )
        start_ms = chunk.start_ms[served]
        share = 1.0 / chunk.batch_size[served]
        self._add_intervals(self._busy_ticks, start_ms, start_ms + chunk.service_ms[served], chunk.node_index[served], share)

    def _add_drops(self, chunk: RequestChunk, end_window: np.ndarray) -> None:
        dropped = np.flatnonzero(chunk.dropped)
        if not len(dropped):
            return
        reasons, local = np.unique(np.asarray(chunk.drop_reason, dtype=object)[dropped], return_inverse=True)
        for reason in reasons:
            if reason not in self._reasons:
                self._reasons.append(reason)
        if len(self._reasons) > self._drops.shape[1]:
            self._drops = _grown(self._drops, len(self._drops), len(self._reasons))
        columns = np.array([self._reasons.index(reason) for reason in reasons], np.int64)[local]
        width = self._drops.shape[1]
        cells = end_window[dropped] * width + columns
        self._drops += np.bincount(cells, minlength=self._drops.size).reshape(self._drops.shape)

    def _add_latency(self, chunk: RequestChunk, end_window: np.ndarray) -> None:
        served = chunk.final & ~chunk.dropped
        if not served.any():
            return
        windows = end_window[served]
        low = int(windows.min())
        span = int(windows.max()) - low + 1
        classes, bins = self._latency.shape[1:]
        cells = ((windows - low) * classes + chunk.class_index[served]) * bins + self.histogram.bin_of(chunk.latency_ms[served])
        counts = np.bincount(cells, minlength=span * classes * bins).reshape(span, classes, bins)
        self._latency[low : low + span] += counts.astype(np.int32)

    def _add_intervals(
        self, target: np.ndarray, begin_ms: np.ndarray, end_ms: np.ndarray, column: np.ndarray, weight: float | np.ndarray
    ) -> None:
        """Add ``weight`` × the overlap of each interval [begin, end) with every window to ``target``.

        The partial first and last windows get their exact overlap; the windows in between get a
        whole window each, through a difference array. Each piece is rounded to integer ticks.
        """
        weight = np.broadcast_to(np.asarray(weight, np.float64), begin_ms.shape)
        keep = end_ms > begin_ms
        begin_ms, end_ms, column, weight = begin_ms[keep], end_ms[keep], column[keep], weight[keep]
        if not len(begin_ms):
            return
        first = self._window(begin_ms)
        last = np.maximum(np.ceil(end_ms / self.window_ms).astype(np.int64) - 1, first)  # window holding end − ε
        self._touch(first)
        self._touch(last)
        low = int(first.min())
        span = int(last.max()) - low + 1
        width = target.shape[1]

        def ticks(ms: np.ndarray) -> np.ndarray:
            return np.rint(ms * weight * TICKS_PER_MS)

        single = first == last
        head_ms = np.where(single, end_ms, (first + 1) * self.window_ms) - begin_ms
        tail_ms = np.where(single, 0.0, end_ms - last * self.window_ms)
        whole = np.rint(weight * self._window_ticks) * ~single  # per whole window inside, from first+1 to last−1
        length = span * width
        sums = np.bincount((first - low) * width + column, ticks(head_ms), length)
        sums += np.bincount((last - low) * width + column, ticks(tail_ms), length)
        steps = np.bincount((first + 1 - low) * width + column, whole, length + width)[:length]
        steps -= np.bincount((last - low) * width + column, whole, length)
        sums += np.cumsum(steps.reshape(span, width), axis=0).ravel()
        target[low : low + span] += sums.reshape(span, width).astype(np.int64)

    def frame(self) -> pd.DataFrame:
        """The time series as a wide DataFrame, one row per window (columns in the module doc)."""
        import pandas as pd  # loaded only by a monitored run
        first = min(self._first, self._end)
        rows = slice(first, self._end)
        window_s = self.window_ms / MS_PER_S
        index = pd.RangeIndex(first, self._end, name="window")
        latency = self._latency[rows]
        completions = latency.sum(axis=(1, 2), dtype=np.int64)
        drops = self._drops[rows]
        columns: dict[str, np.ndarray] = {
            "window_start_s": index.to_numpy() * window_s,
            "window_end_s": (index.to_numpy() + 1) * window_s,
            "arrivals": self._arrivals[rows],
            "completions": completions,
            "throughput_per_s": completions / window_s,
            "drops": drops.sum(axis=1, dtype=np.int64),
        }
        for reason in sorted(self._reasons):
            columns[f"drops.{reason}"] = drops[:, self._reasons.index(reason)]
        overall = latency.sum(axis=1, dtype=np.int64)
        columns["latency_p50_ms"] = self.histogram.quantile(overall, 0.5)
        columns["latency_p99_ms"] = self.histogram.quantile(overall, 0.99)
        if len(self.class_names) > 1:
            for class_index, name in enumerate(self.class_names):
                columns[f"latency_p50_ms.{name}"] = self.histogram.quantile(latency[:, class_index], 0.5)
                columns[f"latency_p99_ms.{name}"] = self.histogram.quantile(latency[:, class_index], 0.99)
        for node_index, name in enumerate(self.node_names):
            columns[f"queue_length.{name}"] = self._queued_ticks[rows, node_index] / self._window_ticks
        for node_index, (name, workers) in enumerate(zip(self.node_names, self.node_workers)):
            columns[f"utilization.{name}"] = self._busy_ticks[rows, node_index] / (workers * self._window_ticks)
        if self._has_cache:
            arrivals = self._arrivals[rows]
            with np.errstate(invalid="ignore", divide="ignore"):
                columns["cache_hit_ratio"] = np.where(arrivals > 0, self._cache_hits[rows] / arrivals, np.nan)
        return pd.DataFrame(columns, index=index)
