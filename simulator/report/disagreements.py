"""Why theory and simulation disagree at a point of a plan, in one line each: which of theory's assumptions the
simulated configuration breaks (``simulator.planning.theory`` and ``simulator.model.capacity`` state them).

Theory's offered load is a lower bound on the work (full batches, the least overhead and slowdown, no model loads,
every request a model call on the busiest replica); its M/G/c estimate is one FIFO queue fed by Poisson arrivals with
one fixed batch size and a heavy-traffic wait (Erlang C probability, Lee–Longton mean, exponential shape).
"""

from __future__ import annotations

from typing import Any

UTILIZATION_TOLERANCE = 0.05  # simulated utilisation this close to theory's offered load (absolute) agrees with it


def mean_batch(batch_sizes: dict[str, int]) -> float | None:
    """The mean size of the batches served (None: none recorded)."""
    calls = sum(batch_sizes.values())
    return sum(int(size) * count for size, count in batch_sizes.items()) / calls if calls else None


def utilization_gap(offered_load: float | None, utilization: float | None, batch_sizes: dict[str, int]) -> str | None:
    """Why the simulated utilisation is not theory's offered load (None: they agree, or one is missing)."""
    if offered_load is None or utilization is None or abs(utilization - offered_load) <= UTILIZATION_TOLERANCE:
        return None
    if utilization > offered_load:
        batch = mean_batch(batch_sizes)
        if batch is not None and any(int(size) > 1 for size in batch_sizes):
            return (f"busier than theory: its offered load assumes every batch is full (the best case); the simulated "
                    f"batches held {batch:.3g} requests on average, so each request took more worker time")
        return ("busier than theory: its offered load counts the least overhead and slowdown and no model loads (a lower "
                "bound on the work); the simulated workers did more per request")
    return ("less busy than theory: its offered load counts every request as a model call on the busiest replica; the "
            "simulation served fewer calls there (cache hits, drops, or load spread over several replicas)")


def estimate_gap(estimate_ms: float | None, item: dict[str, Any] | None, setting: dict[str, Any]) -> str | None:
    """Why the M/G/c estimate lies outside the simulated interval (None: inside it, or nothing to compare).

    ``setting``: what the searched node does, from the scenario (``arrival``: the arrival process, ``discipline``,
    ``batching``: bool, ``batch_sizes``: the sizes served)."""
    if estimate_ms is None or item is None or item.get("ci_low") is None or item.get("ci_high") is None:
        return None
    if item["ci_low"] <= estimate_ms <= item["ci_high"]:
        return None
    side = "above" if estimate_ms > item["ci_high"] else "below"
    reasons = []
    if setting.get("arrival") not in (None, "poisson"):
        reasons.append(f"it assumes Poisson arrivals, these are {setting['arrival']}")
    if setting.get("discipline") not in (None, "fifo"):
        reasons.append(f"it is one FIFO queue, the node serves by {setting['discipline']} (the classes overtake each other)")
    if setting.get("batching"):
        batch = mean_batch(setting.get("batch_sizes") or {})
        served = f"; the simulated batches held {batch:.3g} on average" if batch is not None else ""
        reasons.append(f"it fixes one batch size (the smallest that keeps the node at most 80 % busy){served}")
    if not reasons:
        reasons.append("no assumption of it is broken here: the gap is its heavy-traffic wait approximation's own "
                       "(Erlang C probability, Lee–Longton mean, exponential shape)")
    return f"the M/G/c estimate is {side} the simulation: " + "; ".join(reasons)


def node_setting(parameters: dict[str, Any], node: str, params: dict[str, Any]) -> dict[str, Any]:
    """What the estimate's assumptions are checked against: the arrival process, and the searched node's discipline
    and batching, from the validated scenario (``plan.json``'s ``parameters_yaml``, parsed) with a configuration's
    ``params`` (the plan's dimensions) over it."""
    workload = parameters.get("workload") or {}
    processes = {c["arrival"]["process"] for c in workload.get("classes", []) if c.get("arrival")}
    if workload.get("arrival"):
        processes.add(workload["arrival"]["process"])
    spec = next((n for n in parameters.get("nodes", []) if n.get("name") == node), {})
    discipline = params["discipline"] if "discipline" in params else spec.get("discipline")
    return {
        "arrival": " and ".join(sorted(processes)) if processes else None,
        "discipline": (discipline or {}).get("policy"),
        "batching": (params["batching"] if "batching" in params else spec.get("batching")) is not None,
    }
