"""Per-request records written as parquet, chunk by chunk, so memory stays bounded."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute  # noqa: F401  (pa.compute)
import pyarrow.parquet as pq

from simulator.files import write_atomically
from simulator.metrics.collector import RequestChunk


class RecordWriter:
    """Writes chunks of one replication's finished requests to a parquet file (a part that
    ``concatenate_parquet`` later joins into the run's records)."""

    def __init__(self, path: Path, replication: int, class_names: Sequence[str], node_names: Sequence[str]) -> None:
        self.path = path
        self.replication = replication
        self.class_names = pa.array(list(class_names))
        self.node_names = pa.array([*node_names, ""])
        self._writer: pq.ParquetWriter | None = None

    def __call__(self, chunk: RequestChunk) -> None:
        count = len(chunk.request_id)
        served = ~chunk.dropped
        table = pa.table(
            {
                "replication": pa.array([self.replication] * count, pa.int32()),
                "request_id": chunk.request_id,
                "class": self.class_names.take(pa.array(chunk.class_index)),
                "node": self.node_names.take(pa.array(np.where(chunk.node_index < 0, len(self.node_names) - 1, chunk.node_index))),
                "arrival_ms": chunk.arrival_ms,
                "start_ms": pa.array(chunk.start_ms, mask=~served),
                "service_ms": pa.array(chunk.service_ms, mask=~served),
                "end_ms": chunk.end_ms,
                "wait_ms": pa.array(chunk.wait_ms, mask=~served),
                "latency_ms": pa.array(chunk.latency_ms, mask=~served),
                "node_arrival_ms": chunk.node_arrival_ms,
                "network_ms": chunk.network_ms,
                "batch_size": pa.array(chunk.batch_size, pa.int32()),
                "batch_wait_ms": chunk.batch_wait_ms,
                "load_ms": chunk.load_ms,
                "copy_ms": chunk.copy_ms,
                "lost_ms": chunk.lost_ms,
                "preempted_ms": chunk.preempted_ms,
                "compute_ms": pa.array(chunk.service_ms - chunk.load_ms - chunk.copy_ms, mask=~served),
                "key": pa.array(chunk.key, mask=chunk.key < 0),
                "cache_hit": chunk.cache_hit if chunk.cache_hit is not None else np.zeros(count, bool),
                "cache_ms": chunk.cache_ms,
                "stage": pa.array(chunk.stage, pa.int32()),
                "final": chunk.final,
                "transfer_ms": chunk.transfer_ms,
                "retries": pa.array(chunk.retries, pa.int32()),
                "dropped": pa.array(chunk.drop_reason, pa.string()),
            }
        )
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.path, table.schema, compression="zstd")
        self._writer.write_table(table)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


def concatenate_parquet(parts: Sequence[Path], destination: Path, warmups: Sequence[int]) -> None:
    """Join replication files into one, row group by row group (written atomically), then remove the parts.

    A ``measured`` column says which rows the summary counts: those after their replication's warm-up.
    """
    existing = [(part, warmup) for part, warmup in zip(parts, warmups) if part.is_file()]

    def write(path: Path) -> None:
        writer = None
        for part, warmup in existing:
            source = pq.ParquetFile(part)
            for group in range(source.num_row_groups):
                table = source.read_row_group(group)
                table = table.append_column("measured", pa.compute.greater_equal(table["request_id"], warmup))
                if writer is None:
                    writer = pq.ParquetWriter(path, table.schema, compression="zstd")
                writer.write_table(table)
        if writer is not None:
            writer.close()

    if existing:
        write_atomically(destination, write)
    for part, _ in existing:
        part.unlink()
