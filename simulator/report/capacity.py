"""The capacity report of a plan (``latsim report RESULTS_DIR``): one self-contained HTML page and its Markdown twin.

Both are rendered by Jinja2 from ``templates/`` and the same context, built here from the plan's
``plan.json``. The HTML embeds its figures as data URIs and forbids every network load (a
Content-Security-Policy), so it opens offline as a single file; the Markdown links PNG files written
beside it. User text (scenario, class and hardware names, descriptions) is escaped: by Jinja2's
autoescaping in HTML, and by the ``md`` filter (backslashes before Markdown's punctuation, HTML
entities for ``<``, ``>`` and ``&``) in Markdown.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import yaml

from simulator.planning.api import load_result
from simulator.report.disagreements import estimate_gap, node_setting, utilization_gap
from simulator.report.plan_plots import FIGURES, draw_all
from simulator.report.render import headroom, interval, number, percent, rounded_share, write_pages

CATEGORIES = {  # why a configuration was never confirmed with full runs, in words
    "quality floor": "its model variant is below the quality floor",
    "not profiled": "the bundle has no measurements of its variant",
    "theory": "theory rules it out (utilisation ≥ 1, or a sound lower bound on a latency percentile above its SLO)",
    "monotonicity": "monotonicity: fewer replicas than a count that violates, or more than the fewest that do not",
    "cost": "not confirmed: enough cheaper configurations meet every SLO",
}


CLOSEST = 5  # configurations shown when none meets every SLO


def _cost_per_million(cost_per_hour: float, rate_per_s: float | None) -> float | None:
    return cost_per_hour / (rate_per_s * 3600) * 1e6 if rate_per_s else None


def _row(document: dict[str, Any], config: dict[str, Any], rank: int) -> dict[str, Any]:
    """One configuration of the top table: cost, load, quality and every bound at the target with its interval."""
    winner = document.get("winner") or {}
    loads = config["max_load"]
    full_load = winner.get("max_load") if winner.get("id") == config["id"] else None
    load = full_load or loads["full"] or loads["screen"]
    target = document["inputs"]["targets_per_s"][-1]
    outcome = config["full"]
    return {
        "rank": rank, "id": config["id"], "label": config["label"], "cost_per_hour": config["cost_per_hour"],
        "cost_per_million_target": _cost_per_million(config["cost_per_hour"], target),
        "cost_per_million_max": _cost_per_million(config["cost_per_hour"], load["low_per_s"] if load else None),
        "max_load": load, "max_load_precision": "full" if load and load["full"] else "screening",
        "quality": config["quality"], "items": outcome["items"], "margin": outcome["margin"], "verdict": outcome["verdict"],
        "requests": outcome["requests"], "utilization": outcome["utilization"],
    }


def _sentence(document: dict[str, Any], top: list[dict[str, Any]]) -> str:
    """The verdict sentence: the best configuration, its costs, load and margins, VALID or INVALID with reasons."""
    targets = ", ".join(f"{number(rate)}/s" for rate in document["inputs"]["targets_per_s"])
    validity = "VALID" if document["valid"] else "INVALID (" + "; ".join(document["invalid_reasons"]) + ")"
    if not top:
        closest = _closest(document)
        nearest = (
            f" The closest: {closest[0]['label']} at {number(closest[0]['cost_per_hour'])} per hour, which {closest[0]['miss']} "
            f"and sustains {closest[0]['sustains']}." if closest else ""
        )
        return (f"No configuration of the {document['inputs']['space_size']} searched meets every SLO at {targets}.{nearest}"
                f"{_inconclusive(document)} {validity}.")
    best = top[0]
    margins = "; ".join(f"{item['label']}: {interval(item)}, margin {percent(item['margin'])}" for item in best["items"])
    load = best["max_load"]
    sustained = (
        f"it sustains up to {number(load['low_per_s'])}/s ({headroom(load.get('headroom_percent'))} over the target; "
        f"at {number(load['high_per_s'])}/s: {load['limit']})" if load
        else "its maximum load was not found"
    )
    return (
        f"Best configuration: {best['label']}, at {number(best['cost_per_hour'])} per hour "
        f"({number(best['cost_per_million_target'])} per million requests at {targets}; "
        f"{number(best['cost_per_million_max'])} at its maximum load). It meets every SLO at {targets} ({margins}); "
        f"{sustained}.{_inconclusive(document)} {validity}."
    )


def _inconclusive(document: dict[str, Any]) -> str:
    """The cheaper configurations whose verdict at the target stayed inconclusive, with their intervals (empty: none)."""
    found = [
        f"{config['label']} at {number(config['cost_per_hour'])} per hour ("
        + "; ".join(f"{item['label']}: {interval(item)}" for item in config["items"] if item["verdict"] != "met") + ")"
        for config in document.get("inconclusive_cheaper", [])
    ]
    return f" Cheaper, but left inconclusive (neither met nor violated at this precision): {', '.join(found)}." if found else ""


def _sustains(config: dict[str, Any]) -> str:
    """The load a configuration sustains, from its simulated maximum load, else theory's capacity (offered load 1)."""
    found = config["max_load"]["full"] or config["max_load"]["screen"]
    if found is not None:
        return f"{number(found['low_per_s'])}/s (simulated, {'full' if found['full'] else 'screening'} runs)"
    capacity = (config.get("theory") or {}).get("capacity_per_s")
    return f"at most {number(capacity)}/s (theory: offered load 1)" if capacity is not None else "no load found"


def _shortfall(config: dict[str, Any], bounds: dict[str, float]) -> tuple[float, str] | None:
    """How far a configuration is from meeting every SLO at the target (relative; ≤ 0: within its bounds but not shown
    to be) and what it misses, in words; None: it was neither simulated nor bounded by theory."""
    outcome = config["full"] or config["screen"]
    if outcome is not None and outcome["items"]:
        worst = min(outcome["items"], key=lambda item: -math.inf if item["margin"] is None else item["margin"])
        if worst["margin"] is None:
            return math.inf, f"misses {worst['label']} ({interval(worst)}: drops count as infinitely late)"
        runs = "full" if outcome["full"] else "screening"
        if worst["margin"] >= 0:
            return -worst["margin"], f"stays inside {worst['label']} by {rounded_share(worst['margin'])} ({interval(worst)}, {worst['verdict']} in {runs} runs)"
        return -worst["margin"], f"misses {worst['label']} by {rounded_share(-worst['margin'])} ({interval(worst)}, {worst['verdict']} in {runs} runs)"
    if outcome is not None:
        return math.inf, f"is unstable at the target ({outcome['reason']})"
    theory = config.get("theory")
    if theory is None:
        return None
    if theory["offered_load"] >= 1:
        return theory["offered_load"] - 1, f"cannot keep up: offered load {number(theory['offered_load'], 3)} ≥ 1 at the target (theory)"
    missed = [(bound["lower_bound_ms"] / bounds[bound["label"]] - 1, bound) for bound in theory["bounds"]
              if bound["lower_bound_ms"] is not None and bound["label"] in bounds and bounds[bound["label"]] > 0]
    if not missed:
        return None
    gap, bound = max(missed, key=lambda pair: pair[0])
    return gap, (f"misses {bound['label']} by at least {rounded_share(gap)} (a sound lower bound of {number(bound['lower_bound_ms'])} ms: "
                 f"{bound['method']})")


def _closest(document: dict[str, Any]) -> list[dict[str, Any]]:
    """When no configuration meets every SLO: the ones that come nearest, with what they miss by how much and the load
    they sustain (the figures that say what would make them pass)."""
    bounds = {slo["label"]: slo["bound"] for slo in document["inputs"]["slos"]}
    found = []
    for config in document["configurations"]:
        shortfall = _shortfall(config, bounds)
        if shortfall is not None:
            found.append({"id": config["id"], "label": config["label"], "cost_per_hour": config["cost_per_hour"],
                          "shortfall": shortfall[0], "miss": shortfall[1], "sustains": _sustains(config)})
    return sorted(found, key=lambda row: (row["shortfall"], row["cost_per_hour"], row["id"]))[:CLOSEST]


def _analytic_rows(document: dict[str, Any]) -> list[dict[str, Any]]:
    """Theory beside the simulation, each disagreement explained: the winner at every load simulated at full length, or,
    without a winner, the closest configurations at the target load."""
    parameters = yaml.safe_load(document["scenario"]["parameters_yaml"]) or {}
    by_id = {config["id"]: config for config in document["configurations"]}
    winner = document.get("winner")
    if winner is not None:
        points = [(by_id[winner["id"]], point, point["theory"]) for point in winner["curve"] if point.get("theory")]
    else:
        chosen = [by_id[row["id"]] for row in _closest(document)]
        points = [(config, config["full"] or config["screen"], config["theory"]) for config in chosen if config.get("theory")]
    rows = []
    for config, point, theory in points:
        batch_sizes = (point or {}).get("batch_sizes") or {}
        setting = {**node_setting(parameters, document["inputs"]["node"], config["params"]), "batch_sizes": batch_sizes}
        utilization = None if point is None else point["utilization"]
        items = {item["label"]: item for item in (point or {}).get("items", [])}
        for bound in theory["bounds"]:
            item = items.get(bound["label"])
            rows.append({
                "label": config["label"], "rate_per_s": point["rate_per_s"] if point else document["inputs"]["targets_per_s"][-1],
                "offered_load": theory["offered_load"], "utilization": utilization, "bound": bound, "item": item,
                "why": [gap for gap in (utilization_gap(theory["offered_load"], utilization, batch_sizes),
                                        estimate_gap(bound["estimate_ms"], item, setting)) if gap],
            })
    return rows


def _calibration(document: dict[str, Any]) -> str | None:
    """What the answer rests on: calibrated from a real server's logs (and what raw profiles would have chosen), or raw
    profiles alone; None for a plan.json written before plans said so."""
    calibration = document.get("calibration")
    if calibration is None:
        return None
    if not calibration.get("calibrated"):
        return f"This answer rests on raw profiles: {calibration.get('note') or 'no calibration was given'}."
    raw = calibration.get("raw_profile") or {}
    files = ", ".join(calibration.get("files") or [])
    if raw.get("winner") is None:
        return f"Calibrated from {files}; the raw profiles would have chosen no configuration."
    load = raw.get("max_load")
    sustained = f", sustaining {number(load['low_per_s'])}/s" if load else ""
    return (f"Calibrated from {files}; the raw profiles would have chosen {raw.get('label') or raw['winner']} at "
            f"{number(raw.get('cost_per_hour'))} per hour{sustained}.")


def report_context(document: dict[str, Any]) -> dict[str, Any]:
    """Everything both templates show, from a plan's results document."""
    by_id = {config["id"]: config for config in document["configurations"]}
    top = [_row(document, by_id[identifier], rank) for rank, identifier in enumerate(document["finalists"], start=1)]
    reasons: dict[str, list[str]] = {}
    for config in document["configurations"]:
        if config["fate"] is not None:
            reasons.setdefault(config["fate"]["category"], []).append(config["fate"]["reason"])
    winner = document.get("winner")
    return {
        "document": document, "inputs": document["inputs"], "search": document["search"], "winner": winner,
        "title": f"Capacity plan: {document['scenario']['name']}", "sentence": _sentence(document, top), "top": top,
        "slo_labels": [slo["label"] for slo in document["inputs"]["slos"]],
        "reasons": [
            {"category": CATEGORIES.get(category, category), "count": len(found), "examples": sorted(set(found))[:3]}
            for category, found in sorted(reasons.items(), key=lambda item: -len(item[1]))
        ],
        "figures": [{"name": name, "title": title, "caption": caption} for name, (title, caption, _) in FIGURES.items()],
        "closest": [] if top else _closest(document), "analytic": _analytic_rows(document), "calibration": _calibration(document),
        "candidates": sorted(
            (config for config in document["configurations"] if config["max_load"]["screen"] is not None),
            key=lambda config: config["cost_per_hour"],
        ),
    }


def write_report(results: Path, out: Path | None = None) -> list[Path]:
    """Write ``report.html``, ``report.md`` and ``plots/*.png`` for the plan in ``results`` into ``out`` (default ``results/report``)."""
    document = load_result(results)
    return write_pages(Path(out) if out is not None else Path(results) / "report", "capacity", report_context(document), draw_all(document))
