"""What the samples were measured on: the hardware id that names a bundle's directory, and the
hardware/software description stored in its metadata."""

from __future__ import annotations

import os
import platform
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from simulator.profiling.errors import ProfilingError
from simulator.runner.executors import available_cpus


def cpu_model() -> str:
    """The CPU's marketing name (from /proc/cpuinfo on Linux)."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def cpu_cores() -> int:
    """Cores this process may run on (its affinity, not the host's total)."""
    return available_cpus()


def cpu_flags() -> list[str]:
    """The vector-instruction flags that decide which int8/bf16 kernels are native."""
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.is_file():
        return []
    for line in cpuinfo.read_text(errors="replace").splitlines():
        if line.startswith("flags"):
            wanted = re.compile(r"^(avx2|avx512\w*|amx\w*|fma|f16c)$")
            return sorted(flag for flag in line.split(":", 1)[1].split() if wanted.match(flag))
    return []


def native_bf16() -> bool:
    return any(flag in cpu_flags() for flag in ("avx512_bf16", "amx_bf16"))


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def resolve_device(device: str) -> torch.device:
    """``auto`` → the GPU when torch sees one, else the CPU; ``cuda`` without a GPU is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ProfilingError("--device cuda: torch sees no CUDA GPU on this machine (use --device cpu or auto)")
    if device not in ("cpu", "cuda"):
        raise ProfilingError(f"--device {device!r}: use auto, cpu or cuda")
    return torch.device(device)


def _nvidia_driver() -> str | None:
    try:
        done = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip().splitlines()[0] if done.stdout.strip() else None


def gpu_description(device: torch.device) -> dict[str, Any] | None:
    if device.type != "cuda":
        return None
    properties = torch.cuda.get_device_properties(device)
    return {
        "name": properties.name,
        "memory_gib": round(properties.total_memory / 2**30, 1),
        "compute_capability": f"{properties.major}.{properties.minor}",
        "driver": _nvidia_driver(),
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version(),
    }


def hardware_id(device: torch.device) -> str:
    """``cpu-<model>-<n>c-<vector isa>`` or ``cuda-<gpu>``: the directory that groups a machine's bundles.

    The vector instruction set torch uses (avx2, avx512, ...) is part of a CPU's id: virtual
    machines report the same model name over hosts whose kernels differ several-fold.
    """
    if device.type == "cuda":
        return f"cuda-{slug(torch.cuda.get_device_name(device))}"
    return f"cpu-{slug(cpu_model())}-{cpu_cores()}c-{slug(torch.backends.cpu.get_cpu_capability())}"


def describe(device: torch.device) -> dict[str, Any]:
    """Hardware and software facts a reader needs to judge the numbers."""
    return {
        "device": device.type,
        "cpu_model": cpu_model(),
        "cpu_cores": cpu_cores(),
        "cpu_flags": cpu_flags(),
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "gpu": gpu_description(device),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "quantized_engine": torch.backends.quantized.engine,
    }


def _busy_cpu_seconds() -> float | None:
    """CPU seconds all processes have spent busy since boot (Linux /proc/stat), else None."""
    stat = Path("/proc/stat")
    if not stat.is_file():
        return None
    fields = [int(value) for value in stat.read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


class ContentionMeter:
    """How busy the machine was while we measured: load averages, and the cores other processes
    kept busy on average (all busy CPU time minus this process's own, over the wall time)."""

    def __enter__(self) -> ContentionMeter:
        self.load_before = os.getloadavg()
        self.busy_before = _busy_cpu_seconds()
        self.own_before = time.process_time()
        self.wall_before = time.monotonic()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.load_after = os.getloadavg()
        self.busy_after = _busy_cpu_seconds()
        self.own_after = time.process_time()
        self.wall_after = time.monotonic()

    def report(self) -> dict[str, Any]:
        wall = self.wall_after - self.wall_before
        others = None
        if self.busy_before is not None and self.busy_after is not None and wall > 0:
            own = self.own_after - self.own_before
            others = round(max(self.busy_after - self.busy_before - own, 0.0) / wall, 3)
        return {
            "load_average_before": [round(x, 2) for x in self.load_before],
            "load_average_after": [round(x, 2) for x in self.load_after],
            "other_processes_busy_cores": others,
            "cpu_cores": cpu_cores(),
            "wall_seconds": round(wall, 1),
        }
