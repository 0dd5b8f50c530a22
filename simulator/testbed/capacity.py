"""``latsim testbed capacity``: the highest rate at which a real server meets an SLO, found on the server itself.

The search loads the server open-loop at a rate for a while, ``repeats`` times, and calls the rate
*met* when every valid repeat's statistic (its first tenth left out; a failed request counts as
infinitely late) is within the bound. It first brackets the answer — the low end met, the high end
not, widening each at most ``MAX_WIDENINGS`` times — then bisects until the bracket is narrower
than ``tolerance`` of its low end. A repeat is invalid when the sender fell behind (as a testbed
run is); a rate with no valid repeat ends the search with the bracket it has. The same search in
simulation gives latsim's predicted maximum rate for a scenario, so the two stand side by side.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from simulator.errors import UnstableSystemError
from simulator.metrics.collector import QUANTILES
from simulator.scenario.schema import Scenario
from simulator.testbed.errors import TestbedError

WARMUP_FRACTION = 0.1
MAX_WIDENINGS = 4  # each end of the bracket doubles or halves at most this often
MAX_STEPS = 30  # bisection steps at most, whatever the tolerance
_SLO = re.compile(r"^\s*(mean|p50|p90|p95|p99|p99\.9)\s*<=\s*([0-9.eE+-]+)\s*(ms)?\s*$")


@dataclass(frozen=True)
class LatencySlo:
    """A bound on one latency statistic of all requests, in ms."""

    statistic: str
    bound_ms: float

    def __str__(self) -> str:
        return f"{self.statistic} <= {self.bound_ms:g} ms"

    def value_ms(self, latency_ms: np.ndarray) -> float:
        """The statistic of a run's latencies (inf where a request failed: NaN in ``latency_ms``)."""
        if latency_ms.size == 0 or np.isnan(latency_ms).any():
            return math.inf
        return float(latency_ms.mean()) if self.statistic == "mean" else float(np.quantile(latency_ms, QUANTILES[self.statistic]))


def parse_slo(text: str) -> LatencySlo:
    """``p99<=25`` (or ``mean <= 4 ms``): a LatencySlo; a TestbedError says what is allowed."""
    match = _SLO.match(text)
    bound = float(match.group(2)) if match else math.nan
    if match is None or not (0 < bound < 1e9):
        raise TestbedError(f"--slo {text[:100]!r}: give STATISTIC<=MS with a statistic of mean, {', '.join(QUANTILES)}, e.g. p99<=25")
    return LatencySlo(match.group(1), bound)


Probe = Callable[[float, int], tuple[float, bool]]  # (rate, repeat) → (statistic in ms, valid)


def search_capacity(
    probe: Probe, slo: LatencySlo, low_per_s: float, high_per_s: float, repeats: int, tolerance: float,
    say: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """The bracket [highest met rate, lowest rate not met] and every point measured, by ``probe`` (the real server,
    or a simulation)."""
    points: list[dict[str, Any]] = []

    def met(rate: float) -> bool | None:
        values = [probe(rate, repeat) for repeat in range(repeats)]
        valid = [value for value, ok in values if ok]
        verdict = None if not valid else all(value <= slo.bound_ms for value in valid)
        points.append({"rate_per_s": rate, "values_ms": [v if math.isfinite(v) else None for v, _ in values],
                       "valid": [ok for _, ok in values], "met": verdict})
        say(f"{rate:.4g}/s: {slo.statistic} " + ", ".join(f"{v:.4g}" + ("" if ok else " (invalid)") for v, ok in values)
            + f" ms -> {'no valid run' if verdict is None else 'met' if verdict else 'not met'}")
        return verdict

    low, high = low_per_s, high_per_s
    for _ in range(MAX_WIDENINGS + 1):
        verdict = met(low)
        if verdict:
            break
        if verdict is None:
            return _result(slo, None, None, points, "no valid run at the low end")
        high, low = low, low / 2
    else:
        return _result(slo, None, high, points, f"not met even at {low * 2:.4g}/s")
    for _ in range(MAX_WIDENINGS + 1):
        verdict = met(high)
        if verdict is False:
            break
        if verdict is None:
            return _result(slo, low, None, points, "no valid run at the high end")
        low, high = high, high * 2
    else:
        return _result(slo, low, None, points, f"met even at {high / 2:.4g}/s")
    for _ in range(MAX_STEPS):
        if (high - low) / low <= tolerance:
            break
        middle = (low + high) / 2
        verdict = met(middle)
        if verdict is None:
            return _result(slo, low, high, points, f"no valid run at {middle:.4g}/s")
        low, high = (middle, high) if verdict else (low, middle)
    return _result(slo, low, high, points, None)


def _result(slo: LatencySlo, low: float | None, high: float | None, points: list[dict[str, Any]], stopped: str | None) -> dict[str, Any]:
    return {"slo": str(slo), "low_per_s": low, "high_per_s": high, "stopped": stopped, "points": points}


def simulated_probe(scenario: Scenario, slo: LatencySlo) -> Probe:
    """The scenario at a Poisson rate (its classes' shares kept), simulated: the SLO's statistic of all classes
    (inf when the system is unstable); always valid. Its replications are its repeats: search it with one."""
    from simulator.runner.api import run

    def probe(rate_per_s: float, _repeat: int) -> tuple[float, bool]:
        at_rate = scenario.replace("workload.arrival", {"process": "poisson", "rate_per_s": rate_per_s})
        try:
            result = run(at_rate, on_unstable="return")
        except UnstableSystemError:
            return math.inf, True
        if result.status != "ok":
            return math.inf, True
        return float(result.summary["classes"]["all"]["latency_ms"][slo.statistic]["estimate"]), True

    return probe


def latency_of_records(records: Any) -> np.ndarray:
    """A load generator's records as latencies in ms (scheduled send → reply; NaN where a request failed), in send
    order, the first ``WARMUP_FRACTION`` left out."""
    ordered = records.sort_values("scheduled_ns")
    latency = (ordered["reply_received_ns"] - ordered["scheduled_ns"]).to_numpy(float) / 1e6
    latency[(ordered["status"] != 200).to_numpy()] = np.nan
    return latency[int(len(latency) * WARMUP_FRACTION):]
