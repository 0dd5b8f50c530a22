"""From raw records to one table per run: server records joined with client records on request
id, every timestamp in ms relative to the run's start (the load generator's time zero; server and
client share CLOCK_MONOTONIC), and the latency parts derived from them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from simulator.fitting.calibration import handoff_ms
from simulator.testbed.workers import NO_DEADLINE_NS

NS_PER_MS = 1_000_000

TIMESTAMPS_NS = (
    "scheduled_ns",
    "send_ns",
    "arrival_ns",
    "enqueue_ns",
    "dequeue_ns",
    "kernel_start_ns",
    "kernel_end_ns",
    "worker_done_ns",
    "reply_sent_ns",
    "reply_received_ns",
)

DERIVED_COLUMNS = {
    "latency_ms": "client: scheduled send → whole reply read (lateness of the sender included)",
    "lateness_ms": "client: actual − scheduled send",
    "server_ms": "server: request read → response written",
    "wait_ms": "enqueue → a worker took it (batching delay included)",
    "kernel_ms": "the model call (shared by the whole batch)",
    "worker_overhead_ms": "worker time outside the kernel: dequeue → kernel start + kernel end → reply written",
    "worker_busy_ms": "dequeue → the worker was free again",
    "handoff_ms": "the call's dequeue − the moment its worker could have taken it (the request's enqueue, or the end "
    "of the worker's previous call): the worker's wake-up or hand-off (NaN with dynamic batching, where the "
    "batcher's deliberate delay cannot be told apart from it)",
    "service_ms": "handoff_ms + worker_busy_ms: the service time the queue sees (worker_busy_ms with batching)",
    "transport_ms": "latency_ms − server_ms: client, network stack and the sender's lateness",
    "outside_ms": "latency_ms − (worker_done_ms − enqueue_ms): all but the queue and the worker (the sender's "
    "lateness, the network both ways, the event loop reading the request and writing the reply)",
    "request_transport_ms": "client send → server read the request",
    "reply_transport_ms": "server wrote the response → client read it",
    "deadline_ms": "the class's relative deadline (NaN: none)",
    "met_deadline": "replied with 200 and latency_ms <= deadline_ms (client view; no deadline: always met)",
}


def join_records(server: pd.DataFrame, client: pd.DataFrame, origin_ns: int, batching: bool) -> pd.DataFrame:
    """One row per client request (left join: a failed request keeps NaN server columns); ``batching``: the
    server batched dynamically (no hand-off is measured then)."""
    server_only = server.drop(columns=["phase", "class"])
    joined = client.merge(server_only, on="request_id", how="left", validate="one_to_one")
    ns = {name: joined[name].where(joined[name] >= 0).astype("float64") for name in TIMESTAMPS_NS}
    table = joined.drop(columns=[*TIMESTAMPS_NS, "deadline_ns"])
    for name, values in ns.items():
        table[name.removesuffix("_ns") + "_ms"] = (values - origin_ns) / NS_PER_MS

    def span(start: str, end: str) -> pd.Series:
        return (ns[end] - ns[start]) / NS_PER_MS

    table["latency_ms"] = span("scheduled_ns", "reply_received_ns")
    table["lateness_ms"] = span("scheduled_ns", "send_ns")
    table["server_ms"] = span("arrival_ns", "reply_sent_ns")
    table["wait_ms"] = span("enqueue_ns", "dequeue_ns")
    table["kernel_ms"] = span("kernel_start_ns", "kernel_end_ns")
    table["worker_overhead_ms"] = span("dequeue_ns", "kernel_start_ns") + span("kernel_end_ns", "reply_sent_ns")
    table["worker_busy_ms"] = span("dequeue_ns", "worker_done_ns")
    table["handoff_ms"] = np.nan if batching else handoff_ms(table)
    table["service_ms"] = table["worker_busy_ms"] + table["handoff_ms"].fillna(0.0)
    table["transport_ms"] = table["latency_ms"] - table["server_ms"]
    table["outside_ms"] = table["latency_ms"] - span("enqueue_ns", "worker_done_ns")
    table["request_transport_ms"] = span("send_ns", "arrival_ns")
    table["reply_transport_ms"] = span("reply_sent_ns", "reply_received_ns")
    deadline_ns = joined["deadline_ns"].astype("float64")
    table["deadline_ms"] = ((deadline_ns - ns["arrival_ns"]) / NS_PER_MS).where(deadline_ns != NO_DEADLINE_NS)
    table["met_deadline"] = (table["status"] == 200) & ~(table["latency_ms"] > table["deadline_ms"])
    integers = ["worker", "batch_id", "batch_size", "priority", "in_system_at_arrival", "in_system_at_dequeue"]
    return table.astype({column: "Int64" for column in integers}).sort_values("scheduled_ms", ignore_index=True)


def _percentiles(values: pd.Series) -> dict[str, float] | None:
    values = values.dropna()
    if values.empty:
        return None
    p50, p90, p99 = np.percentile(values, [50, 90, 99])
    return {
        "mean": float(values.mean()),
        "p50": float(p50),
        "p90": float(p90),
        "p99": float(p99),
        "max": float(values.max()),
    }


def summarize(table: pd.DataFrame, workers: int) -> dict[str, Any]:
    """Latency parts (mean and percentiles, ms), per-class latency, throughput and worker utilization."""
    served = table.dropna(subset=["server_ms"])
    span_s = (table["reply_received_ms"].max() - table["scheduled_ms"].min()) / 1000.0
    batches = served.drop_duplicates("batch_id")
    busy_s = batches["worker_busy_ms"].sum() / 1000.0
    return {
        "requests": len(table),
        "served": len(served),
        "throughput_per_s": round(len(served) / span_s, 3) if span_s > 0 else None,
        "worker_utilization": round(busy_s / (workers * span_s), 4) if span_s > 0 else None,
        "mean_batch_size": float(batches["batch_size"].mean()) if len(batches) else None,
        "met_deadline": float(table["met_deadline"].mean()),
        **{
            column: _percentiles(table[column])
            for column in DERIVED_COLUMNS
            if column.endswith("_ms") and column != "deadline_ms"
        },
        "latency_ms_by_class": {str(name): _percentiles(group["latency_ms"]) for name, group in table.groupby("class")},
    }


REQUEST_LOG_COLUMNS = {  # request-log column → the joined table's column
    "request_id": "request_id", "class": "class", "status": "status",
    "scheduled_send_ms": "scheduled_ms", "client_send_ms": "send_ms", "client_receive_ms": "reply_received_ms",
    "server_arrival_ms": "enqueue_ms", "dequeue_ms": "dequeue_ms", "service_start_ms": "kernel_start_ms",
    "service_end_ms": "kernel_end_ms", "worker_free_ms": "worker_done_ms", "worker_id": "worker",
    "batch_id": "batch_id", "batch_size": "batch_size",
}


def request_log_frame(table: pd.DataFrame, target_rate_per_s: float | None = None, level: float | None = None) -> pd.DataFrame:
    """A run's table (joined, or the client's alone with times in ms) in the request-log format (``formats.request_log``)."""
    frame = pd.DataFrame({log: table[column] for log, column in REQUEST_LOG_COLUMNS.items() if column in table})
    frame["class"] = frame["class"].astype(str)
    if target_rate_per_s is not None:
        frame["target_rate_per_s"] = float(target_rate_per_s)
    if level is not None:
        frame["level"] = float(level)
    return frame
