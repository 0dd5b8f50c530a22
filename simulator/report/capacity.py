"""The capacity report of a plan (``latsim report RESULTS_DIR``): one self-contained HTML page and its Markdown twin.

Both are rendered by Jinja2 from ``templates/`` and the same context, built here from the plan's
``plan.json``. The HTML embeds its figures as data URIs and forbids every network load (a
Content-Security-Policy), so it opens offline as a single file; the Markdown links PNG files written
beside it. User text (scenario, class and hardware names, descriptions) is escaped: by Jinja2's
autoescaping in HTML, and by the ``md`` filter (backslashes before Markdown's punctuation, HTML
entities for ``<``, ``>`` and ``&``) in Markdown.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from simulator.planning.api import load_result
from simulator.report.plan_plots import FIGURES, draw_all
from simulator.report.render import headroom, interval, number, percent, write_pages

CATEGORIES = {  # why a configuration was never confirmed with full runs, in words
    "quality floor": "its model variant is below the quality floor",
    "not profiled": "the bundle has no measurements of its variant",
    "theory": "theory rules it out (utilisation ≥ 1, or a sound lower bound on a latency percentile above its SLO)",
    "monotonicity": "monotonicity: fewer replicas than a count that violates, or more than the fewest that do not",
    "cost": "not confirmed: enough cheaper configurations meet every SLO",
}


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
        return f"No configuration of the {document['inputs']['space_size']} searched meets every SLO at {targets}.{_inconclusive(document)} {validity}."
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
        "candidates": sorted(
            (config for config in document["configurations"] if config["max_load"]["screen"] is not None),
            key=lambda config: config["cost_per_hour"],
        ),
    }


def write_report(results: Path, out: Path | None = None) -> list[Path]:
    """Write ``report.html``, ``report.md`` and ``plots/*.png`` for the plan in ``results`` into ``out`` (default ``results/report``)."""
    document = load_result(results)
    return write_pages(Path(out) if out is not None else Path(results) / "report", "capacity", report_context(document), draw_all(document))
