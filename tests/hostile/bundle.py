"""A tiny valid profile bundle, the starting point the hostile cases spoil."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from simulator.formats.profile_bundle import write_bundle

METADATA = {
    "hardware_id": "cpu-test-2c",
    "created_utc": "2026-01-01T00:00:00+00:00",
    "hardware": {"cpu_model": "Test CPU", "cpu_cores": 2, "torch": "2.13.0", "gpu": None},
    "harness": {"serving_threads": 2},
    "machine_load": {"load_average_before": [0.1, 0.1, 0.1], "load_average_after": [0.2, 0.1, 0.1]},
    "models": [{"family": "mlp", "variant": "fp32", "device": "cpu", "params": 10, "flops_per_sample": 20, "quality": {"accuracy": 0.9}}],
    "skipped": [{"family": "mlp", "variant": "fp16", "device": "cpu", "reason": "fp16 is profiled on GPU only"}],
}


def write_pristine(directory: Path) -> Path:
    """Write the bundle (mlp/fp32 on the CPU, sweep samples at batch sizes 1 and 4 with 2 threads) into ``directory``."""
    frames = [
        pd.DataFrame(
            {
                "family": "mlp", "variant": "fp32", "device": "cpu", "dtype": "float32", "batch_size": batch,
                "threads": 2, "concurrency": 1, "mode": "sweep", "stage": "end_to_end", "worker": 0,
                "sample_index": np.arange(50), "timestamp_ns": np.arange(50) * 1000, "latency_ms": 1.0 + batch * 0.5,
            }
        )
        for batch in (1, 4)
    ]
    write_bundle(directory, pd.concat(frames, ignore_index=True), METADATA)
    return directory
