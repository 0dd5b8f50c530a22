"""Monitoring time series: exact window sums on hand-built requests, histogram quantiles, plots, engine."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from simulator import run, scenario_from_dict
from simulator.metrics.collector import RequestChunk
from simulator.metrics.timeseries import TimeSeriesRecorder
from simulator.model.request import Request
from simulator.report.plots import plot_timeseries
from tests.helpers import base_scenario


def _request(
    request_id: int,
    arrival_ms: float,
    start_ms: float,
    service_ms: float,
    *,
    end_ms: float | None = None,
    node: int = 0,
    cls: int = 0,
    drop: str = "",
    **extra: object,
) -> Request:
    """A finished request; dropped ones pass ``start_ms=-1`` and their ``end_ms``."""
    request = Request(request_id, cls, 0, arrival_ms, arrival_ms + 1e9)
    request.node_index = node
    request.start_ms = start_ms
    request.service_ms = service_ms
    request.end_ms = start_ms + service_ms if end_ms is None else end_ms
    request.drop_reason = drop
    for name, value in extra.items():
        setattr(request, name, value)
    return request


def _frame(
    requests: list[Request], workers: tuple[int, ...] = (1,), window_ms: float = 1000.0, classes=("a",), with_cache=False
) -> pd.DataFrame:
    recorder = TimeSeriesRecorder(window_ms, list(classes), [f"n{i}" for i in range(len(workers))], list(workers))
    recorder.add(RequestChunk(requests, with_cache))
    return recorder.frame()


def test_busy_interval_is_split_exactly_over_windows():
    frame = _frame([_request(0, 500.0, 500.0, 2000.0)])
    assert frame.index.tolist() == [0, 1, 2]
    assert frame["utilization.n0"].tolist() == pytest.approx([0.5, 1.0, 0.5], abs=1e-12)
    assert frame["window_start_s"].tolist() == [0.0, 1.0, 2.0]
    assert frame["arrivals"].tolist() == [1, 0, 0]
    assert frame["completions"].tolist() == [0, 0, 1]
    assert frame["queue_length.n0"].tolist() == [0.0, 0.0, 0.0]


def test_queue_intervals_drops_and_counts():
    requests = [
        _request(0, 300.0, 1700.0, 100.0),  # waits 1400 ms: 700 in window 0, 700 in window 1
        _request(1, 1900.0, -1.0, 0.0, end_ms=3200.0, drop="deadline"),  # waits 1300 ms: 100, 1000, 200
        _request(2, 2100.0, -1.0, 0.0, end_ms=2100.0, node=-1, drop="unavailable"),  # never reached a node
    ]
    frame = _frame(requests, workers=(2,))
    assert frame["queue_length.n0"].tolist() == pytest.approx([0.7, 0.8, 1.0, 0.2], abs=1e-12)
    assert frame["utilization.n0"].tolist() == pytest.approx([0.0, 0.05, 0.0, 0.0], abs=1e-12)  # 100 ms of 2 workers
    assert frame["arrivals"].tolist() == [1, 1, 1, 0]
    assert frame["completions"].tolist() == [0, 1, 0, 0]
    assert frame["drops"].tolist() == [0, 0, 1, 1]
    assert frame["drops.deadline"].tolist() == [0, 0, 0, 1]
    assert frame["drops.unavailable"].tolist() == [0, 0, 1, 0]
    assert frame["throughput_per_s"].tolist() == [0.0, 1.0, 0.0, 0.0]
    assert np.isnan(frame["latency_p99_ms"].iloc[0]) and frame["latency_p99_ms"].iloc[1] == pytest.approx(1500, rel=0.1)


def test_batch_counts_once_and_queue_starts_at_node_arrival():
    batch = [
        _request(i, 0.0, 400.0, 200.0, batch_size=2, node_arrival_ms=200.0 * i) for i in range(2)
    ]  # one batch of two on one worker: busy 200 ms, not 400; waits 400 ms and 200 ms at the node
    frame = _frame(batch)
    assert frame["utilization.n0"].tolist() == pytest.approx([0.2])
    assert frame["queue_length.n0"].tolist() == pytest.approx([0.6])


def test_cache_hit_ratio_per_arrival_window():
    requests = [_request(i, 250.0 * i, 250.0 * i, 1.0, cache_hit=i % 4 == 0) for i in range(8)]
    frame = _frame(requests, with_cache=True)
    assert frame["cache_hit_ratio"].tolist() == [0.25, 0.25]


def test_no_cache_column_without_a_cache():
    frame = _frame([_request(0, 500.0, 700.0, 2000.0)])
    assert "cache_hit_ratio" not in frame.columns
    assert frame["utilization.n0"].tolist() == pytest.approx([0.3, 1.0, 0.7])
    assert frame["queue_length.n0"].tolist() == pytest.approx([0.2, 0.0, 0.0])


def _random_requests(count: int, seed: int = 7, classes: int = 1) -> list[Request]:
    rng = np.random.default_rng(seed)
    arrival_ms = np.sort(rng.uniform(0.0, 20_000.0, count))
    latency_ms = rng.lognormal(np.log(20.0), 1.0, count)
    node = rng.integers(0, 2, count)
    cls = rng.integers(0, classes, count)
    dropped = rng.random(count) < 0.05
    return [
        _request(i, a, -1.0, 0.0, end_ms=a + l, node=int(n), cls=int(c), drop="queue_full")
        if d
        else _request(i, a, a + 0.3 * l, 0.7 * l, node=int(n), cls=int(c))
        for i, (a, l, n, c, d) in enumerate(zip(arrival_ms, latency_ms, node, cls, dropped))
    ]


def test_histogram_quantiles_within_documented_resolution():
    requests = _random_requests(30_000)
    recorder = TimeSeriesRecorder(1000.0, ["a"], ["n0", "n1"], [1, 1])
    recorder.add(RequestChunk(requests))
    frame = recorder.frame()
    chunk = RequestChunk(requests)
    served = ~chunk.dropped
    window = (chunk.end_ms[served] // 1000).astype(int)
    ratio = recorder.histogram.ratio
    checked = 0
    for w, row in frame.iterrows():
        latencies = chunk.latency_ms[served][window == w]
        if len(latencies) < 100:
            continue
        for q, column in ((0.5, "latency_p50_ms"), (0.99, "latency_p99_ms")):
            exact = np.quantile(latencies, q, method="inverted_cdf")
            assert exact / ratio <= row[column] <= exact * ratio, (w, q)
        checked += 1
    assert checked >= 15


def test_chunk_order_does_not_change_the_frame():
    requests = _random_requests(6000, classes=2)
    rng = np.random.default_rng(3)
    frames = []
    for order in range(3):
        shuffled = [requests[i] for i in rng.permutation(len(requests))] if order else requests
        recorder = TimeSeriesRecorder(500.0, ["a", "b"], ["n0", "n1"], [1, 2])
        for part in np.array_split(np.arange(len(shuffled)), 7):
            recorder.add(RequestChunk([shuffled[i] for i in part]))
        frames.append(recorder.frame())
    pd.testing.assert_frame_equal(frames[0], frames[1], check_exact=True)
    pd.testing.assert_frame_equal(frames[0], frames[2], check_exact=True)
    assert {"latency_p99_ms.a", "latency_p99_ms.b", "drops.queue_full"} <= set(frames[0].columns)
    assert frames[0]["arrivals"].sum() == len(requests)


def test_empty_recorder_gives_empty_frame():
    frame = TimeSeriesRecorder(1000.0, ["a"], ["n0"], [1]).frame()
    assert len(frame) == 0
    assert {"window_start_s", "throughput_per_s", "latency_p99_ms", "utilization.n0"} <= set(frame.columns)


def test_plots_are_written_as_png(tmp_path):
    requests = _random_requests(3000, classes=2)
    for request in requests[::3]:
        request.cache_hit = True
    recorder = TimeSeriesRecorder(1000.0, ["a", "b"], ["n0", "n1"], [1, 1])
    recorder.add(RequestChunk(requests, with_cache=True))
    paths = plot_timeseries(recorder.frame(), tmp_path / "plots", "synthetic")
    assert [p.name for p in paths] == [
        "throughput.png", "latency.png", "queue_length.png", "utilization.png", "cache_hit_ratio.png"
    ]
    for path in paths:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 1000
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == sorted(p.name for p in paths)


def _requests_from_records(records: pd.DataFrame, class_names: list[str], node_names: list[str]) -> list[Request]:
    """Rebuild finished requests from the per-request parquet records."""
    requests = []
    optional = [name for name in ("node_arrival_ms", "batch_size", "cache_hit") if name in records.columns]
    for row in records.rename(columns={"class": "class_name"}).itertuples(index=False):
        start_ms = -1.0 if pd.isna(row.start_ms) else row.start_ms
        service_ms = 0.0 if pd.isna(row.service_ms) else row.service_ms
        extra = {name: getattr(row, name) for name in optional}
        requests.append(
            _request(
                row.request_id, row.arrival_ms, start_ms, service_ms, end_ms=row.end_ms,
                node=node_names.index(row.node) if row.node in node_names else -1,
                cls=class_names.index(row.class_name), drop=row.dropped or "", **extra,
            )
        )
    return requests


def test_engine_run_matches_summary_utilization(tmp_path):
    records_path = tmp_path / "requests.parquet"
    data = base_scenario(run={"requests": 20000, "warmup_requests": 2000, "replications": 1, "seed": 5})
    result = run(scenario_from_dict(data), records_path=records_path)
    records = pq.read_table(records_path).to_pandas()
    records = records[records["replication"] == 0]
    requests = _requests_from_records(records, ["a"], ["n"])
    window_ms = 1000.0
    recorder = TimeSeriesRecorder(window_ms, ["a"], ["n"], [1])
    for part in np.array_split(np.arange(len(requests)), 5)[::-1]:
        recorder.add(RequestChunk([requests[i] for i in part]))
    frame = recorder.frame()
    node = result.summary["nodes"]["n"]
    assert frame["arrivals"].sum() == len(records) == frame["completions"].sum() + frame["drops"].sum()
    # The summary integrates busy workers and waiting requests exactly over the measured window
    # [t0, t1] (the first and the last measured arrival): the records' intervals clipped to it agree.
    warmup = result.summary["warmup_requests"][0]
    t0 = records.loc[records["request_id"] == warmup, "arrival_ms"].item()
    t1 = records["arrival_ms"].max()
    served = records[records["start_ms"].notna()]

    def overlap(begin: pd.Series, end: pd.Series) -> float:
        return float((np.minimum(end, t1) - np.maximum(begin, t0)).clip(lower=0).sum())

    assert overlap(served["start_ms"], served["start_ms"] + served["service_ms"]) == pytest.approx(
        node["utilization"]["estimate"] * (t1 - t0), rel=1e-9
    )
    assert overlap(served["node_arrival_ms"], served["start_ms"]) == pytest.approx(
        node["mean_queue_length"]["estimate"] * (t1 - t0), rel=1e-9
    )
    assert records["measured"].sum() == 20000 and not records.loc[records["request_id"] < warmup, "measured"].any()
    inside = frame[(frame["window_start_s"] * 1000 >= t0) & (frame["window_end_s"] * 1000 <= t1)]
    assert inside["utilization.n"].mean() == pytest.approx(0.5, abs=0.05)  # ρ = 0.5
