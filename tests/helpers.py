"""Small scenarios built as plain data, as a YAML file would hold them, and the CLI run as a child process."""

from __future__ import annotations

import copy
import subprocess
import sys
from typing import Any


def base_scenario(**overrides: Any) -> dict[str, Any]:
    """An M/M/1-like scenario at ρ = 0.5; ``overrides`` replace top-level sections."""
    scenario = {
        "name": "test",
        "run": {"requests": 20000, "warmup_requests": 2000, "replications": 2, "seed": 1},
        "workload": {
            "arrival": {"process": "poisson", "rate_per_s": 50},
            "classes": [{"name": "a", "deadline_ms": 50, "kind": "soft", "target": 0.9}],
        },
        "nodes": [{"name": "n", "workers": 1, "service": {"distribution": "scipy", "name": "expon", "params": {"scale": 10.0}}}],
    }
    scenario.update(copy.deepcopy(overrides))
    return scenario


def run_cli(*arguments: str, timeout_s: float = 600) -> subprocess.CompletedProcess:
    """``latsim ARGUMENTS`` in a child process (killed at ``timeout_s``), its output captured as text."""
    return subprocess.run([sys.executable, "-m", "simulator", *arguments], capture_output=True, text=True, timeout=timeout_s)
