"""The result of a run: its summary with intervals, its replications' raw estimates, and what was asked."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from simulator.files import write_text_atomically
from simulator.metrics.collector import ALL
from simulator.metrics.summary import Estimate
from simulator.runner.plan import RunPlan
from simulator.scenario.schema import Scenario

if TYPE_CHECKING:
    import pandas as pd


class RunResult:
    """What a run produced, and what it was asked: ``summary`` is the JSON document described in docs/outputs.md.

    ``status`` is ``"ok"``, or ``"unstable"`` (then ``message`` says why and ``summary`` is empty)
    when the caller asked for an unstable point to come back as a result rather than an error.
    """

    def __init__(
        self,
        plan: RunPlan,
        summary: dict[str, Any],
        replications: list[dict],
        status: str = "ok",
        message: str = "",
    ) -> None:
        self.plan = plan
        self.summary = summary
        self.replications = replications
        self.status = status
        self.message = message

    @property
    def scenario(self) -> Scenario:
        return self.plan.scenario

    @property
    def seed(self) -> int:
        return self.plan.seed

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def timeseries(self) -> pd.DataFrame | None:
        """Monitoring windows of every replication (a ``replication`` column first), if monitored."""
        frames = [r["timeseries"].reset_index() for r in self.replications if r.get("timeseries") is not None]
        if not frames:
            return None
        for replication, frame in enumerate(frames):
            frame.insert(0, "replication", replication)
        import pandas as pd  # loaded when asked for: a run without tables starts without it

        combined = pd.concat(frames, ignore_index=True)
        drops = [column for column in combined.columns if column.startswith("drops.")]
        combined[drops] = combined[drops].fillna(0).astype("int64")  # a reason absent in one replication is 0 there
        return combined

    def estimate(self, metric: str, cls: str = ALL) -> Estimate:
        """``metric`` is a dotted path inside a class summary, e.g. ``latency_ms.p99`` or ``drop_ratio_by_reason.timeout``
        (any statistic ``to_frame`` lists)."""
        value = find_statistic(self.summary["classes"][cls], metric, f"class {cls!r}")
        return Estimate(value["estimate"], value["ci_low"], value["ci_high"])

    def node_estimate(self, metric: str, node: str) -> Estimate:
        """``metric`` is a dotted path inside a node summary, e.g. ``utilization``."""
        value = find_statistic(self.summary["nodes"][node], metric, f"node {node!r}")
        return Estimate(value["estimate"], value["ci_low"], value["ci_high"])

    def to_frame(self) -> pd.DataFrame:
        """Tidy table: one row per (scope, name, metric) with estimate and interval."""
        import pandas as pd
        rows = []
        for scope, entries in (("class", self.summary["classes"]), ("node", self.summary["nodes"])):
            for name, stats in entries.items():
                for metric, value in _leaves(stats):
                    rows.append({"scope": scope, "name": name, "metric": metric, **value})
        return pd.DataFrame(rows, columns=["scope", "name", "metric", "estimate", "ci_low", "ci_high"])

    def to_json(self) -> str:
        return json.dumps(self.summary, indent=2)

    def write_json(self, path: Path) -> None:
        """Write the summary atomically (never a half-written file)."""
        write_text_atomically(path, self.to_json() + "\n")


def find_statistic(stats: dict, metric: str, scope: str) -> dict:
    """The statistic at a dotted path; keys may hold dots themselves (``p99.9``), so the whole remainder is tried first."""
    found = _walk(stats, metric)
    if found is None:
        known = ", ".join(name for name, _ in _leaves(stats))
        raise KeyError(f"{metric!r}: no such statistic of {scope}; the statistics are {known}")
    return found


def _walk(stats: dict, path: str) -> dict | None:
    value = stats.get(path)
    if isinstance(value, dict) and "estimate" in value:
        return value
    for key, inner in stats.items():
        if isinstance(inner, dict) and path.startswith(key + "."):
            found = _walk(inner, path[len(key) + 1:])
            if found is not None:
                return found
    return None


def _leaves(stats: dict, prefix: str = ""):
    for key, value in stats.items():
        if isinstance(value, dict) and "estimate" in value:
            yield prefix + key, value
        elif isinstance(value, dict) and key not in ("dropped", "slo", "batch_sizes"):
            yield from _leaves(value, f"{prefix}{key}.")
