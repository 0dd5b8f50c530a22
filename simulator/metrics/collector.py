"""Per-replication statistics, gathered in chunks so memory stays bounded on long runs.

Every finished request (served or dropped) is handed to ``record``; requests that arrived
during warm-up are ignored. Chunks are reduced with numpy into running sums, streaming
quantiles and batch sums (for batch-means confidence intervals), and optionally written out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import attrgetter

import numpy as np

from simulator.metrics.quantiles import StreamingQuantiles
from simulator.model.request import Request

QUANTILES = {"p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99, "p99.9": 0.999}
CHUNK_SIZE = 65536
ALL = "all"


class RequestChunk:
    """Column arrays of one chunk of finished requests (times in simulated ms).

    ``cache_hit`` is None when the scenario has no result cache. Stage columns (``wait_ms``,
    ``service_ms``, ``queued_ms``, ...) describe the node visit the row records; with a pipeline a
    request leaves one row per stage, ``final`` marks its last, and ``total_wait_ms`` /
    ``total_service_ms`` add up its stages. Without one every row is final, at stage 0.
    """

    def __init__(self, requests: Sequence[Request], with_cache: bool = False, with_stages: bool = False) -> None:
        count = len(requests)

        def column(attribute: str, dtype: type) -> np.ndarray:
            return np.fromiter(map(attrgetter(attribute), requests), dtype, count)

        self.request_id = column("request_id", np.int64)
        self.key = column("key", np.int64)
        self.class_index = column("class_index", np.int64)
        self.node_index = column("node_index", np.int64)
        self.arrival_ms = column("arrival_ms", np.float64)
        self.start_ms = column("start_ms", np.float64)
        self.end_ms = column("end_ms", np.float64)
        self.service_ms = column("service_ms", np.float64)
        self.node_arrival_ms = column("node_arrival_ms", np.float64)
        self.batch_size = column("batch_size", np.int64)
        self.batch_wait_ms = column("batch_wait_ms", np.float64)
        self.network_ms = column("network_ms", np.float64)
        self.cache_hit = column("cache_hit", bool) if with_cache else None
        self.cache_ms = column("cache_ms", np.float64)
        self.load_ms = column("load_ms", np.float64)
        self.copy_ms = column("copy_ms", np.float64)
        self.retries = column("retries", np.int64)
        self.drop_reason = [r.drop_reason for r in requests]
        self.dropped = np.fromiter(map(bool, self.drop_reason), bool, count)
        self.latency_ms = self.end_ms - self.arrival_ms
        self.wait_ms = np.where(self.dropped, np.nan, self.start_ms - self.node_arrival_ms)
        self.queued_ms = np.where(self.dropped, self.end_ms, self.start_ms) - self.node_arrival_ms
        self.worker_ms = self.service_ms / self.batch_size  # a batch's time, shared among its requests
        if with_stages:
            self.stage = column("stage", np.int64)
            self.final = ~column("stage_record", bool)
            self.transfer_ms = column("transfer_ms", np.float64)
            self.total_wait_ms = self.wait_ms + column("upstream_wait_ms", np.float64)
            self.total_service_ms = self.service_ms + column("upstream_service_ms", np.float64)
        else:
            self.stage = np.zeros(count, np.int64)
            self.final = np.ones(count, bool)
            self.transfer_ms = np.zeros(count)
            self.total_wait_ms, self.total_service_ms = self.wait_ms, self.service_ms


class _Series:
    """Running statistics of one class (or of all classes together)."""

    def __init__(self, batches: int) -> None:
        self.finished = 0
        self.completed = 0
        self.met = 0
        self.cache_hits = 0
        self.dropped: dict[str, int] = {}
        self.latency_sum_ms = 0.0
        self.wait_sum_ms = 0.0
        self.service_sum_ms = 0.0
        self.latency = StreamingQuantiles()
        self.wait = StreamingQuantiles()
        self.batch_finished = np.zeros(batches)
        self.batch_completed = np.zeros(batches)
        self.batch_met = np.zeros(batches)
        self.batch_cache_hits = np.zeros(batches)
        self.batch_latency_sum_ms = np.zeros(batches)
        self.batch_wait_sum_ms = np.zeros(batches)
        self.batch_service_sum_ms = np.zeros(batches)

    def add(self, chunk: RequestChunk, select: np.ndarray, met: np.ndarray, batch: np.ndarray) -> None:
        served = select & ~chunk.dropped
        latency_ms = chunk.latency_ms[served]
        wait_ms = chunk.total_wait_ms[served]
        service_ms = chunk.total_service_ms[served]
        self.finished += int(select.sum())
        self.completed += len(latency_ms)
        self.met += int(met[select].sum())
        for index in np.flatnonzero(select & chunk.dropped):
            reason = chunk.drop_reason[index]
            self.dropped[reason] = self.dropped.get(reason, 0) + 1
        self.latency_sum_ms += float(latency_ms.sum())
        self.wait_sum_ms += float(wait_ms.sum())
        self.service_sum_ms += float(service_ms.sum())
        self.latency.extend(latency_ms)
        self.wait.extend(wait_ms)
        batches = len(self.batch_finished)
        self.batch_finished += np.bincount(batch[select], minlength=batches)
        served_batch = batch[served]
        self.batch_completed += np.bincount(served_batch, minlength=batches)
        self.batch_met += np.bincount(batch[select & met], minlength=batches)
        if chunk.cache_hit is not None:
            self.cache_hits += int((select & chunk.cache_hit).sum())
            self.batch_cache_hits += np.bincount(batch[select & chunk.cache_hit], minlength=batches)
        self.batch_latency_sum_ms += np.bincount(served_batch, latency_ms, minlength=batches)
        self.batch_wait_sum_ms += np.bincount(served_batch, wait_ms, minlength=batches)
        self.batch_service_sum_ms += np.bincount(served_batch, service_ms, minlength=batches)

    def estimates(self, window_s: float, with_cache: bool) -> dict:
        """Point estimates of this replication (NaN where nothing was served)."""
        nan = float("nan")

        def distribution(quantiles: StreamingQuantiles, total_ms: float) -> dict:
            values = quantiles.quantiles(list(QUANTILES.values()))
            stats = {"mean": total_ms / self.completed if self.completed else nan}
            stats.update(zip(QUANTILES, values))
            stats["max"] = quantiles.max
            return stats

        return {
            "finished": self.finished,
            "completed": self.completed,
            "dropped": dict(sorted(self.dropped.items())),
            "throughput_per_s": self.completed / window_s if window_s > 0 else nan,
            "latency_ms": distribution(self.latency, self.latency_sum_ms),
            "wait_ms": distribution(self.wait, self.wait_sum_ms),
            "service_ms": {"mean": self.service_sum_ms / self.completed if self.completed else nan},
            "deadline_met_ratio": self.met / self.finished if self.finished else nan,
            "processing_ratio": self.service_sum_ms / self.latency_sum_ms if self.latency_sum_ms > 0 else nan,
            "quantiles_exact": self.latency.exact,
        } | ({"cache_hit_ratio": self.cache_hits / self.finished if self.finished else nan} if with_cache else {})

    def batch_estimates(self) -> dict[str, list[float]]:
        """Per-batch means of the mean-type metrics, for batch-means intervals."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return {
                "latency_ms.mean": (self.batch_latency_sum_ms / self.batch_completed).tolist(),
                "wait_ms.mean": (self.batch_wait_sum_ms / self.batch_completed).tolist(),
                "service_ms.mean": (self.batch_service_sum_ms / self.batch_completed).tolist(),
                "deadline_met_ratio": (self.batch_met / self.batch_finished).tolist(),
                "processing_ratio": (self.batch_service_sum_ms / self.batch_latency_sum_ms).tolist(),
                "cache_hit_ratio": (self.batch_cache_hits / self.batch_finished).tolist(),
            }


class ReplicationRecorder:
    """Collects the finished requests of one replication after warm-up.

    Nodes append every finished request (served or dropped) to ``finished``; whoever drives the
    run calls ``flush`` when it holds ``CHUNK_SIZE`` of them, and once at the end.
    """

    def __init__(
        self,
        class_names: Sequence[str],
        relative_deadlines_ms: Sequence[float],
        warmup_requests: int,
        measured_requests: int,
        batches: int,
        node_count: int,
        chunk_sinks: Sequence[Callable[[RequestChunk], None]] = (),
        with_cache: bool = False,
        with_stages: bool = False,
    ) -> None:
        self.class_names = list(class_names)
        self._deadlines_ms = np.asarray(relative_deadlines_ms, dtype=float)
        self.warmup_requests = warmup_requests
        self.measured_requests = max(measured_requests, 1)
        self.batches = batches
        self.chunk_sinks = list(chunk_sinks)
        self.with_cache = with_cache
        self.with_stages = with_stages
        self._series = [_Series(batches) for _ in range(len(self.class_names) + 1)]
        self.finished: list[Request] = []
        self.finished_count = 0  # every finished request, warm-up included
        self.node_busy_ms = np.zeros(node_count)
        self.node_queued_ms = np.zeros(node_count)
        self.node_served = np.zeros(node_count, dtype=np.int64)
        self.node_batch_counts = np.zeros((node_count, 2))  # [node, batch size] → batches served
        self.on_chunk: Callable[[int], None] | None = None

    def flush(self) -> None:
        """Reduce the finished requests gathered so far (warm-up ones are discarded)."""
        warmup = self.warmup_requests
        self.finished_count += len(self.finished) if not self.with_stages else sum(not r.stage_record for r in self.finished)
        measured = [request for request in self.finished if request.request_id >= warmup]
        self.finished.clear()
        if not measured:
            return
        chunk = RequestChunk(measured, self.with_cache, self.with_stages)
        met = ~chunk.dropped & (chunk.latency_ms <= self._deadlines_ms[chunk.class_index])
        batch = np.minimum((chunk.request_id - self.warmup_requests) * self.batches // self.measured_requests, self.batches - 1)
        for class_index, series in enumerate(self._series[:-1]):
            series.add(chunk, chunk.final & (chunk.class_index == class_index), met, batch)
        self._series[-1].add(chunk, chunk.final, met, batch)
        self._add_node_sums(chunk)
        for sink in self.chunk_sinks:
            sink(chunk)
        if self.on_chunk is not None:
            self.on_chunk(int(chunk.final.sum()))

    def _add_node_sums(self, chunk: RequestChunk) -> None:
        nodes = len(self.node_served)
        reached = chunk.node_index >= 0
        if chunk.cache_hit is not None:
            reached &= ~chunk.cache_hit  # a hit in a node's own cache takes no worker and no queue place
        served = reached & ~chunk.dropped
        self.node_busy_ms += np.bincount(chunk.node_index[served], chunk.worker_ms[served], minlength=nodes)
        self.node_queued_ms += np.bincount(chunk.node_index[reached], chunk.queued_ms[reached], minlength=nodes)
        self.node_served += np.bincount(chunk.node_index[served], minlength=nodes)
        sizes = chunk.batch_size[served]
        if len(sizes):
            largest = int(sizes.max())
            if largest >= self.node_batch_counts.shape[1]:
                grown = np.zeros((nodes, largest + 1))
                grown[:, : self.node_batch_counts.shape[1]] = self.node_batch_counts
                self.node_batch_counts = grown
            width = self.node_batch_counts.shape[1]
            cells = chunk.node_index[served] * width + sizes
            self.node_batch_counts += np.bincount(cells, 1.0 / sizes, minlength=nodes * width).reshape(nodes, width)

    def node_estimates(self, node_names: Sequence[str], workers: Sequence[int], window_ms: float) -> dict[str, dict]:
        """Utilization and mean queue length per node, by Little's law over the measured requests."""
        nan = float("nan")
        return {
            name: {
                "utilization": float(busy_ms / (count * window_ms)) if window_ms > 0 else nan,
                "mean_queue_length": float(queued_ms / window_ms) if window_ms > 0 else nan,
                "served": int(served),
                "batch_sizes": {str(size): int(round(n)) for size, n in enumerate(batches) if round(n) > 0},
            }
            for name, count, busy_ms, queued_ms, served, batches in zip(
                node_names, workers, self.node_busy_ms, self.node_queued_ms, self.node_served, self.node_batch_counts
            )
        }

    def estimates(self, window_s: float) -> dict[str, dict]:
        names = [*self.class_names, ALL]
        return {name: series.estimates(window_s, self.with_cache) for name, series in zip(names, self._series)}

    def batch_estimates(self) -> dict[str, dict[str, list[float]]]:
        names = [*self.class_names, ALL]
        return {name: series.batch_estimates() for name, series in zip(names, self._series)}
