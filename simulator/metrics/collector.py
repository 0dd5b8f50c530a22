"""Per-replication statistics, gathered in chunks so memory stays bounded on long runs.

A replication's first ``measured`` requests (ids ``0 .. measured − 1``) are its run zone; later
arrivals only keep the system loaded. Requests are reduced, chunk by chunk, into sums per *fine
batch* (``batch_size`` consecutive request ids), per class and for all classes together. The
warm-up is decided at the end, in whole fine batches: at least the planned warm-up, more if
MSER finds the transient lasted longer (the latency series, and the cache hit ratio series
with a cache). Everything before the cut is then left out; the fine batches after it are the
raw material of batch-means intervals. Latency and wait values are kept with their fine batch
for exact quantiles while the run is small enough (``EXACT_LIMIT``); a longer run cuts at the
planned warm-up as it goes and folds values into a streaming sketch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import attrgetter

import numpy as np

from simulator.metrics.estimators import batch_size_for, run_too_short, mser_truncation, transient_end
from simulator.metrics.quantiles import StreamingQuantiles
from simulator.model.request import Request
from simulator.scenario.workload import ALL_CLASSES as ALL

QUANTILES = {"p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99, "p99.9": 0.999}
CHUNK_SIZE = 65536
FINE_BATCHES = 1280  # fine batches per run zone: the granularity of the warm-up cut and of batch means
EXACT_LIMIT = 2_000_000  # run zones up to this many requests keep every latency (exact quantiles, retroactive cut)

_SLOTTED = frozenset(Request.__slots__)

# per fine batch sums: (numerator, denominator) pairs of the ratio metrics are built from these
SUMS = (
    "finished", "completed", "met", "cache_hits", "waited", "dropped",
    "latency_sum_ms", "latency_square_sum_ms2", "wait_sum_ms", "service_sum_ms", "ratio_sum", "ratio_count",
)


class RequestChunk:
    """Column arrays of one chunk of finished requests (times in simulated ms).

    ``cache_hit`` is None when the scenario has no result cache. Stage columns (``wait_ms``,
    ``service_ms``, ``queued_ms``, ...) describe the node visit the row records; with a pipeline a
    request leaves one row per stage, ``final`` marks its last, and ``total_wait_ms`` /
    ``total_service_ms`` add up its stages. Without one every row is final, at stage 0.
    ``wait_ms`` counts the time a preemptive node kept the request interrupted.
    """

    _FLOATS = (
        "arrival_ms", "start_ms", "end_ms", "service_ms", "node_arrival_ms", "batch_wait_ms", "network_ms",
        "cache_ms", "load_ms", "copy_ms", "lost_ms", "preempted_ms", "transfer_ms", "upstream_wait_ms",
        "upstream_service_ms",
    )
    _INTEGERS = ("request_id", "key", "class_index", "node_index", "batch_size", "retries", "stage")

    def __init__(self, requests: Sequence[Request], with_cache: bool = False, with_stages: bool = False) -> None:
        count = len(requests)
        # a field a request keeps outside its slots is in its instance dict only where the path set it: a field
        # no request of the chunk set holds the class default throughout (one cheap pass instead of one per field)
        written = set().union(*[request.__dict__ for request in requests])

        def column(name: str, dtype: type) -> np.ndarray:
            if name in _SLOTTED or name in written:
                return np.fromiter(map(attrgetter(name), requests), dtype, count)  # one pass per field: the fastest
            return np.full(count, getattr(Request, name), dtype)

        columns = {name: column(name, np.float64) for name in self._FLOATS}
        columns |= {name: column(name, np.int64) for name in self._INTEGERS}
        drop_reason = np.array(list(map(attrgetter("drop_reason"), requests)), dtype=object)
        self._set(
            columns,
            drop_reason,
            drop_reason != "",
            column("cache_hit", bool) if with_cache else None,
            ~column("stage_record", bool) if with_stages else None,
        )

    @classmethod
    def from_columns(
        cls,
        columns: dict[str, np.ndarray],
        drop_reason: Sequence[str] | np.ndarray,
        cache_hit: np.ndarray | None = None,
        final: np.ndarray | None = None,
        dropped: np.ndarray | None = None,
    ) -> RequestChunk:
        """A chunk from column arrays (an engine that simulates in arrays): every name of ``_FLOATS`` and
        ``_INTEGERS`` must be a column; ``drop_reason`` holds "" for a request not dropped (``dropped``, where
        given, says the same as booleans)."""
        chunk = cls.__new__(cls)
        drop_reason = np.asarray(drop_reason, dtype=object)
        chunk._set(columns, drop_reason, drop_reason != "" if dropped is None else dropped, cache_hit, final)
        return chunk

    def _set(
        self, columns: dict[str, np.ndarray], drop_reason: np.ndarray, dropped: np.ndarray, cache_hit: np.ndarray | None,
        final: np.ndarray | None,
    ) -> None:
        for name in (*self._FLOATS, *self._INTEGERS):
            setattr(self, name, columns[name])
        count = len(self.request_id)
        self.cache_hit = cache_hit
        self.drop_reason = drop_reason
        self.dropped = dropped
        self.latency_ms = self.end_ms - self.arrival_ms
        self.wait_ms = self.start_ms - self.node_arrival_ms + self.preempted_ms
        left_ms = self.start_ms  # when the request left the queue: served, or dropped (at its end)
        if self.dropped.any():
            self.wait_ms[self.dropped] = np.nan
            left_ms = np.where(self.dropped, self.end_ms, self.start_ms)
        self.queued_ms = left_ms - self.node_arrival_ms
        if final is not None:
            self.final = final
            self.total_wait_ms = self.wait_ms + self.upstream_wait_ms
            self.total_service_ms = self.service_ms + self.upstream_service_ms
        else:
            self.final = np.ones(count, bool)
            self.total_wait_ms, self.total_service_ms = self.wait_ms, self.service_ms


class ValueStore:
    """Latency-like values of one series: kept with their fine batch (exact, cut later), or streamed."""

    def __init__(self, keep: bool) -> None:
        self.keep = keep
        self._values: list[np.ndarray] = []
        self._batches: list[np.ndarray] = []
        self._last_batches: list[int] = []
        self._stream = StreamingQuantiles()
        self._kept: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # from_batch → kept(from_batch), until the next add
        self._summaries: dict[tuple[int, int], dict[str, float]] = {}  # the same for summary()

    def add(self, values: np.ndarray, batches: np.ndarray, last_batch: int) -> None:
        """Values with their fine batches, none of which is later than ``last_batch``."""
        self._kept.clear()
        self._summaries.clear()
        if self.keep:
            self._values.append(values)
            self._batches.append(batches)
            self._last_batches.append(last_batch)
        else:
            self._stream.extend(values)

    def kept(self, from_batch: int) -> tuple[np.ndarray, np.ndarray]:
        """(values, fine batches) from ``from_batch`` on (kept mode)."""
        if from_batch not in self._kept:
            values, batches = [], []
            for chunk_values, chunk_batches, last_batch in zip(self._values, self._batches, self._last_batches):
                if last_batch < from_batch:
                    continue  # a chunk wholly in the warm-up
                keep = chunk_batches >= from_batch
                whole = bool(keep.all())
                values.append(chunk_values if whole else chunk_values[keep])
                batches.append(chunk_batches if whole else chunk_batches[keep])
            self._kept[from_batch] = (
                (np.concatenate(values), np.concatenate(batches)) if values else (np.zeros(0), np.zeros(0, np.int64))
            )
        return self._kept[from_batch]

    def summary(self, from_batch: int, extra_infinite: int = 0) -> dict[str, float]:
        """The max of the values from ``from_batch`` on, and, when they are streamed, their quantiles
        (kept values give the run summary its quantiles themselves); ``extra_infinite`` more values count as +∞."""
        if (from_batch, extra_infinite) not in self._summaries:
            self._summaries[from_batch, extra_infinite] = self._summary(from_batch, extra_infinite)
        return dict(self._summaries[from_batch, extra_infinite])

    def _summary(self, from_batch: int, extra_infinite: int) -> dict[str, float]:
        if self.keep:
            values, _ = self.kept(from_batch)
            return {"max": float("inf") if extra_infinite else float(values.max()) if len(values) else float("nan")}
        stream = self._stream
        finite = stream.count
        result = {}
        for name, probability in QUANTILES.items():
            rank = probability * (finite + extra_infinite)
            result[name] = (
                float("inf") if finite == 0 or rank > finite else stream.quantiles([min(rank / finite, 1.0)])[0]
            )
        result["max"] = float("inf") if extra_infinite else stream.max
        return result

    @property
    def exact(self) -> bool:
        return self.keep or self._stream.exact


class _Grouped:
    """Rows grouped by batch number (``batch``: 0 .. batches − 1), for counts and sums per batch.

    Rows in batch order (a FIFO run's) are reduced one run of a batch at a time, several times faster
    (a run's sum is numpy's pairwise one: its last bits may differ from a row-by-row sum); others bin by bin.
    """

    def __init__(self, batch: np.ndarray, batches: int) -> None:
        self.batch, self.batches = batch, batches
        self.starts = None  # where each run of one batch starts, when the rows are in batch order
        if len(batch) and np.all(batch[1:] >= batch[:-1]):
            self.starts = np.concatenate(([0], np.flatnonzero(batch[1:] != batch[:-1]) + 1))

    def _runs(self, values: np.ndarray, dtype: type) -> np.ndarray:
        per_batch = np.zeros(self.batches)
        per_batch[self.batch[self.starts]] = np.add.reduceat(values, self.starts, dtype=dtype)
        return per_batch

    def counts(self, masks: Sequence[np.ndarray]) -> list[np.ndarray]:
        """How many rows of each batch each mask selects (integer counts: exact either way).

        Out of order, in one pass: each row's masks make a bit pattern, one count per (batch,
        pattern), then per mask the sum over the patterns that have its bit.
        """
        if self.starts is not None:
            return [self._runs(mask, np.int64) for mask in masks]
        patterns = 1 << len(masks)
        pattern = np.zeros(len(self.batch), np.uint8)  # at most 8 masks
        for bit, mask in enumerate(masks):
            pattern |= mask.view(np.uint8) << np.uint8(bit)
        table = np.bincount(self.batch * patterns + pattern, minlength=self.batches * patterns).reshape(self.batches, patterns)
        has_bit = (np.arange(patterns)[:, None] >> np.arange(len(masks))) & 1
        return list((table.astype(np.float64) @ has_bit.astype(np.float64)).T)

    def sums(self, values: np.ndarray) -> np.ndarray:
        """``values`` summed per batch."""
        if self.starts is None:
            return np.bincount(self.batch, values, self.batches)
        return self._runs(values, np.float64)

    def sizes(self) -> np.ndarray:
        """How many rows each batch holds."""
        if self.starts is None:
            return np.bincount(self.batch, minlength=self.batches)
        per_batch = np.zeros(self.batches, np.int64)
        per_batch[self.batch[self.starts]] = np.diff(self.starts, append=len(self.batch))
        return per_batch

    def extremes(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The least and the greatest of ``values`` per batch (+∞ and −∞ where a batch has no row)."""
        least, greatest = np.full(self.batches, np.inf), np.full(self.batches, -np.inf)
        if self.starts is None:
            np.minimum.at(least, self.batch, values)
            np.maximum.at(greatest, self.batch, values)
        elif len(values):
            least[self.batch[self.starts]] = np.minimum.reduceat(values, self.starts)
            greatest[self.batch[self.starts]] = np.maximum.reduceat(values, self.starts)
        return least, greatest

    def subset(self, rows: np.ndarray) -> _Grouped:
        """The rows where ``rows`` holds (all of them: this grouping itself)."""
        return self if rows.all() else _Grouped(self.batch[rows], self.batches)


class Series:
    """Sums per fine batch, and latency/wait values, of one class (or of all classes together)."""

    def __init__(self, batches: int, keep_values: bool) -> None:
        self.batches = batches
        self.sums = {name: np.zeros(batches) for name in SUMS}
        self.dropped: dict[str, np.ndarray] = {}
        self.latency = ValueStore(keep_values)
        self.wait = ValueStore(keep_values)
        self._fine_dtype = np.min_scalar_type(batches)  # unsigned, as small as the fine batch numbers allow

    def add(self, chunk: RequestChunk, rows: np.ndarray | slice, fine: np.ndarray, met: np.ndarray) -> None:
        """Reduce the chunk's rows ``rows`` (indices in order, or ``slice(None)`` for all), whose fine batches
        are ``fine[rows]`` and whose deadlines were met where ``met[rows]``."""
        fine = fine[rows]
        if len(fine) == 0:
            return
        first = int(fine.min())
        local, width = fine - first, int(fine.max()) - first + 1  # only the fine batches this chunk reaches
        window = slice(first, first + width)
        dropped, latency_ms, wait_ms = chunk.dropped[rows], chunk.latency_ms[rows], chunk.total_wait_ms[rows]
        served = ~dropped
        computed = served if chunk.cache_hit is None else served & ~chunk.cache_hit[rows]
        computed &= latency_ms > 0
        counted = {"completed": served, "met": met[rows], "dropped": dropped, "waited": served & (wait_ms > 0), "ratio_count": computed}
        if chunk.cache_hit is not None:
            counted["cache_hits"] = chunk.cache_hit[rows]
        grouped = _Grouped(local, width)
        counts = dict(zip(counted, grouped.counts(list(counted.values()))))
        counts["finished"] = counts["completed"] + counts["dropped"]  # every row is one or the other
        for name, per_batch in counts.items():
            self.sums[name][window] += per_batch
        service_ms = chunk.total_service_ms[rows]
        all_served = not dropped.any()

        def served_only(values: np.ndarray) -> np.ndarray:
            return values if all_served else values[served]

        served_grouped = grouped.subset(served)
        served_latency_ms = served_only(latency_ms)
        for name, values in (
            ("latency_sum_ms", served_latency_ms), ("latency_square_sum_ms2", served_latency_ms**2),
            ("wait_sum_ms", served_only(wait_ms)), ("service_sum_ms", served_only(service_ms)),
        ):
            self.sums[name][window] += served_grouped.sums(values)
        ratio_rows = slice(None) if computed.all() else computed
        with np.errstate(invalid="ignore", divide="ignore"):
            ratios = service_ms[ratio_rows] / latency_ms[ratio_rows]
        self.sums["ratio_sum"][window] += grouped.subset(computed).sums(ratios)
        if not all_served:
            reasons, reason_index = np.unique(chunk.drop_reason[rows][dropped], return_inverse=True)
            for index, reason in enumerate(reasons.tolist()):
                per_batch = self.dropped.setdefault(reason, np.zeros(self.batches))
                per_batch[window] += np.bincount(local[dropped][reason_index == index], minlength=width)
        served_fine, last = served_only(fine).astype(self._fine_dtype), first + width - 1  # kept compact: read again at the end
        self.latency.add(served_latency_ms, served_fine, last)
        self.wait.add(served_only(wait_ms), served_fine, last)

    def result(self, cut: int, with_cache: bool) -> dict:
        """What the summary needs of this series, from fine batch ``cut`` on: sums per fine batch, this
        replication's quantiles, and (when kept) the latency and wait values with their fine batch."""
        sums = {name: values[cut:] for name, values in self.sums.items() if with_cache or name != "cache_hits"}
        drops = int(sums["dropped"].sum())
        factor, correlated = batch_size_for(sums["latency_sum_ms"], sums["completed"])
        served = sums["completed"].sum()
        if not correlated and served > 0:
            variance = sums["latency_square_sum_ms2"].sum() / served - (sums["latency_sum_ms"].sum() / served) ** 2
            correlated = run_too_short(sums["latency_sum_ms"], sums["completed"], variance, factor)
        return {
            "sums": sums,
            "dropped": {reason: values[cut:] for reason, values in sorted(self.dropped.items())},
            "latency": self.latency.summary(cut),
            "wait": self.wait.summary(cut),
            "latency_or_drop": self.latency.summary(cut, drops),
            "values": {"latency": self.latency.kept(cut), "wait": self.wait.kept(cut)} if self.latency.keep else None,
            "batches_correlated": correlated,
            "quantiles_exact": self.latency.exact,
        }


class ReplicationRecorder:
    """Collects the finished requests of one replication (see the module doc).

    The model appends every finished request (served or dropped) to ``finished``; whoever drives
    the run calls ``flush`` when it holds ``CHUNK_SIZE`` of them, and once at the end.
    """

    def __init__(
        self,
        *,
        class_names: Sequence[str],
        relative_deadlines_ms: Sequence[float],
        measured: int,
        batch_size: int,
        node_count: int,
        chunk_sinks: Sequence[Callable[[RequestChunk], None]] = (),
        with_cache: bool = False,
        with_stages: bool = False,
        planned_warmup: int = 0,
        extend_warmup: bool = True,
    ) -> None:
        self.class_names = list(class_names)
        self._deadlines_ms = np.asarray(relative_deadlines_ms, dtype=float)
        self.measured = measured
        self.batch_size = batch_size
        self.batches = max(-(-measured // batch_size), 1)
        self.chunk_sinks = list(chunk_sinks)
        self.with_cache = with_cache
        self.with_stages = with_stages
        self.planned_cut = -(-planned_warmup // batch_size)
        self.keep_values = measured <= EXACT_LIMIT
        self.extend_warmup = extend_warmup and self.keep_values
        self._series = [Series(self.batches, self.keep_values) for _ in self.class_names]
        # one class: its series is every request's, the same sums in the same order (kept once)
        self._series.append(self._series[0] if len(self.class_names) == 1 else Series(self.batches, self.keep_values))
        self.finished: list[Request] = []
        self.finished_count = 0  # run-zone requests that finished, warm-up included
        # per fine batch: when its first and last served request finished (the span rates are counted over)
        self._first_served_end_ms = np.full(self.batches, np.inf)
        self._last_served_end_ms = np.full(self.batches, -np.inf)
        self._served = np.zeros(self.batches, dtype=np.int64)
        self.node_served = np.zeros(node_count, dtype=np.int64)
        self.node_batch_counts = np.zeros((node_count, 2))  # [node, batch size] → batches served
        self.on_chunk: Callable[[int], None] | None = None  # called with each chunk's finished requests past the planned warm-up

    def flush(self) -> None:
        """Reduce the finished requests gathered so far (later arrivals, which only kept the system loaded, are dropped)."""
        zone = [request for request in self.finished if request.request_id < self.measured]
        self.finished.clear()
        if zone:
            self.add(RequestChunk(zone, self.with_cache, self.with_stages))

    def add(self, chunk: RequestChunk) -> None:
        """Reduce one chunk of finished run-zone requests."""
        self.finished_count += int(chunk.final.sum())
        for sink in self.chunk_sinks:
            sink(chunk)
        fine = chunk.request_id // self.batch_size
        served = chunk.final & ~chunk.dropped
        served_rows = slice(None) if served.all() else served
        self._add_served_ends(fine[served_rows], chunk.end_ms[served_rows])
        counted = chunk.final if self.keep_values else chunk.final & (fine >= self.planned_cut)
        deadline_ms = self._deadlines_ms[0] if len(self._deadlines_ms) == 1 else self._deadlines_ms[chunk.class_index]
        met = ~chunk.dropped & (chunk.latency_ms <= deadline_ms)
        if len(self.class_names) > 1:
            for class_index, series in enumerate(self._series[:-1]):
                series.add(chunk, np.flatnonzero(counted & (chunk.class_index == class_index)), fine, met)
        self._series[-1].add(chunk, slice(None) if counted.all() else np.flatnonzero(counted), fine, met)
        after_warmup = fine >= self.planned_cut
        self._add_node_counts(chunk, after_warmup)
        if self.on_chunk is not None:  # progress in measured requests: the planned warm-up's are not counted
            self.on_chunk(int((chunk.final & after_warmup).sum()))

    def _add_served_ends(self, fine: np.ndarray, end_ms: np.ndarray) -> None:
        """Count the served requests per fine batch and keep each batch's first and last end (for ``served_span_ms``)."""
        grouped = _Grouped(fine, self.batches)
        first_ms, last_ms = grouped.extremes(end_ms)
        np.minimum(self._first_served_end_ms, first_ms, out=self._first_served_end_ms)
        np.maximum(self._last_served_end_ms, last_ms, out=self._last_served_end_ms)
        self._served += grouped.sizes()

    def _add_node_counts(self, chunk: RequestChunk, after_warmup: np.ndarray) -> None:
        nodes = len(self.node_served)
        reached = (chunk.node_index >= 0) & after_warmup
        if chunk.cache_hit is not None:
            reached &= ~chunk.cache_hit  # a hit in a node's own cache takes no worker
        served = reached & ~chunk.dropped
        served_per_node = np.bincount(chunk.node_index[served], minlength=nodes)
        self.node_served += served_per_node
        sizes = chunk.batch_size[served]
        if len(sizes):
            largest = int(sizes.max())
            if largest >= self.node_batch_counts.shape[1]:
                grown = np.zeros((nodes, largest + 1))
                grown[:, : self.node_batch_counts.shape[1]] = self.node_batch_counts
                self.node_batch_counts = grown
            if largest == 1:  # no batching: one batch per request
                self.node_batch_counts[:, 1] += served_per_node
                return
            width = self.node_batch_counts.shape[1]
            cells = chunk.node_index[served] * width + sizes
            self.node_batch_counts += np.bincount(cells, 1.0 / sizes, minlength=nodes * width).reshape(nodes, width)

    def served_span_ms(self, cut: int) -> float:
        """The span over which the served requests after the warm-up completed: n completions from the first
        to the last mark n − 1 gaps, so the span is that time × n / (n − 1) (0 with fewer than two)."""
        first, last = self._first_served_end_ms[cut:].min(initial=np.inf), self._last_served_end_ms[cut:].max(initial=-np.inf)
        served = int(self._served[cut:].sum())
        return float(last - first) * served / (served - 1) if last > first and served > 1 else 0.0

    def cut(self) -> tuple[int, int]:
        """(first measured fine batch, where MSER finds the transient ends), in fine batches.

        The cut is the planned warm-up, or later when MSER (on the latency series, and on the hit
        ratio series with a cache) finds a transient that stands apart from what follows it
        (``estimators.transient_end``) — unless the warm-up was fixed by the user, or the run is
        too long to keep its values. The MSER point is reported either way.
        """
        everything = self._series[-1].sums
        series = [(everything["latency_sum_ms"], everything["completed"])]
        if self.with_cache:
            series.append((everything["cache_hits"], everything["finished"]))
        proposed = max(
            mser_truncation(np.divide(num, den, out=np.zeros(self.batches), where=den > 0), den) for num, den in series
        )
        cut = self.planned_cut
        if self.extend_warmup:
            cut = max(transient_end(num, den, self.planned_cut) for num, den in series)
        return min(cut, self.batches - 1), proposed

    def class_results(self, cut: int) -> dict[str, dict]:
        """Each class's ``Series.result`` and that of all classes (one class: the same dict, computed once)."""
        results: dict[int, dict] = {}
        for series in self._series:
            if id(series) not in results:
                results[id(series)] = series.result(cut, self.with_cache)
        return {name: results[id(series)] for name, series in zip([*self.class_names, ALL], self._series)}

    def node_counts(self, node_names: Sequence[str]) -> dict[str, dict]:
        """Requests served and batch-size histogram per node (after the planned warm-up)."""
        return {
            name: {
                "served": int(served),
                "batch_sizes": {str(size): int(round(n)) for size, n in enumerate(batches) if round(n) > 0},
            }
            for name, served, batches in zip(node_names, self.node_served, self.node_batch_counts)
        }
