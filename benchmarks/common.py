"""What every benchmark script records beside its numbers: the latsim revision, the host, the JSON report,
and the per-class statistics the tools that compute only a few are compared on."""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
from collections.abc import Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def git_revision() -> str:
    """The checkout's commit, flagged when ``simulator/`` has uncommitted changes."""
    try:
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "simulator"],
                               capture_output=True, text=True, check=True).stdout.strip()
        return commit + (" (simulator/ has uncommitted changes)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"


def write_report(path: Path | None, report: dict) -> None:
    """Write ``report`` as indented JSON to ``path`` (nothing when it is None)."""
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {path}")


def report_header(benchmark: str, load_before: Sequence[float], load_after: Sequence[float]) -> dict:
    """The fields every benchmark report starts with: what ran, when, where, at which revision, under what load."""
    return {
        "benchmark": benchmark,
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "host": {"node": platform.node(), "cpus": os.cpu_count(), "python": platform.python_version(), "machine": platform.machine()},
        "latsim_revision": git_revision(),
        "loadavg_before": list(load_before),
        "loadavg_after": list(load_after),
    }


def class_stats(classes: np.ndarray, waits_ms: np.ndarray, latencies_ms: np.ndarray, names: Sequence[str]) -> dict[str, dict[str, float]]:
    """Per class (index into ``names``): the count, and the mean and p99 of wait and latency (ms)."""
    out = {}
    for index, name in enumerate(names):
        select = classes == index
        waits, latencies = waits_ms[select], latencies_ms[select]
        out[name] = {
            "count": int(select.sum()),
            "wait_mean_ms": float(waits.mean()),
            "wait_p99_ms": float(np.quantile(waits, 0.99)),
            "latency_mean_ms": float(latencies.mean()),
            "latency_p99_ms": float(np.quantile(latencies, 0.99)),
        }
    return out
