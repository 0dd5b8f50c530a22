"""``plan``: a scenario with a ``plan:`` block → the cheapest configuration that meets its SLOs, as a results folder.

The folder holds ``points.sqlite`` (every simulated point, kept as it finishes: a rerun resumes) and
``plan.json``, the answer and everything needed to read, check and reproduce it; ``latsim report``
turns that file into HTML and Markdown.
"""

from __future__ import annotations

import json
import math
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

from simulator.errors import ScenarioError
from simulator.files import UnusableFile, make_output_folder, read_regular_file, write_text_atomically
from simulator.planning.documents import check_plan_document, parse_json
from simulator.planning.load import at_rate, target_rates_per_s, with_load_curve
from simulator.planning.points import Evaluator, ProgressCallback, versions
from simulator.planning.search import MaxLoad, Outcome, PlanContext, Planner
from simulator.planning.space import Configuration, Space, without_calibration
from simulator.planning.store import ResultStore
from simulator.planning.theory import latency_targets, offered_load
from simulator.planning.verdict import plan_checks, requests_per_replication, tail_events
from simulator.runner.calibration import RAW_PROFILE_NOTE
from simulator.runner.executors import Executor, InProcessExecutor
from simulator.runner.outputs import scenario_record
from simulator.scenario.schema import Scenario

RESULT_FILE = "plan.json"
FORMAT = "latsim-plan"
FORMAT_VERSION = 1
MIN_REPLICATIONS = 10  # fewer make a report INVALID: intervals from fewer rest on too few degrees of freedom
MIN_TAIL_EVENTS = 1_000  # requests beyond the SLO's tail per replication a VALID verdict rests on
MAX_RESULT_BYTES = 200_000_000
RAW_PROFILE_FOLDER = "raw-profile"  # the same plan from raw profiles, when the plan's nodes are calibrated


def plan(
    scenario: Scenario,
    out: Path,
    executor: Executor | None = None,
    progress: ProgressCallback | None = None,
    exhaustive: bool = False,
    command: str = "",
) -> dict[str, Any]:
    """Search the scenario's plan, write ``out/plan.json`` and return it; points already in ``out`` are reused."""
    if scenario.plan is None:
        raise ScenarioError(f"{scenario.source}: no plan section: add `plan:` with load, slos and space (see docs/planning.md)")
    make_output_folder(out)
    executor = executor or InProcessExecutor()
    started = time.perf_counter()
    raw = without_calibration(scenario)
    raw_bound = Planner(plan_context(raw), None).plan_bound(exhaustive) if raw is not None else 0
    planner, finalists, views = _search(scenario, Path(out), executor, _counted(progress, 0, raw_bound), exhaustive)
    raw_answer = None
    if raw is not None:  # the same plan from the raw profiles, to show what the calibration changed
        raw_folder = make_output_folder(Path(out) / RAW_PROFILE_FOLDER)
        done = planner.evaluator.simulated + planner.evaluator.reused
        raw_planner, raw_finalists, raw_views = _search(raw, raw_folder, executor, _counted(progress, done, 0), exhaustive)
        raw_answer = _raw_answer(raw_planner, raw_finalists, raw_views)
    document = _document(planner, finalists, views, time.perf_counter() - started, executor.describe(), exhaustive, command)
    document["calibration"] = _calibration(planner, raw_answer)
    problem = check_plan_document(document)
    if problem is not None:
        raise ScenarioError(f"{Path(out) / RESULT_FILE}: not written: the plan's results are not sound ({problem})")
    write_text_atomically(Path(out) / RESULT_FILE, json.dumps(document, indent=1, allow_nan=False) + "\n")
    return document


def _counted(progress: ProgressCallback | None, done_before: int, bound_after: int) -> ProgressCallback | None:
    """One search's progress as part of the plan's: the points done before it, and a bound on those after it, added."""
    if progress is None:
        return None
    return lambda done, total: progress(done_before + done, done_before + total + bound_after)


def _search(
    scenario: Scenario, out: Path, executor: Executor, progress: ProgressCallback | None, exhaustive: bool
) -> tuple[Planner, list[Configuration], dict[Any, Any]]:
    """The plan's phases on one scenario, its points kept in ``out``: the planner, its finalists and the winner's views."""
    context = plan_context(scenario)
    store = ResultStore(out, [(check.scope, check.metric) for check in context.checks])
    try:
        evaluator = Evaluator(context.base, context.space, context.seed, store, executor, progress)
        planner = Planner(context, evaluator)
        finalists, views = planner.search(exhaustive)
    finally:
        store.close()
    return planner, finalists, views


def _raw_answer(planner: Planner, finalists: list[Configuration], views: dict[Any, Any]) -> dict[str, Any]:
    """The raw profiles' answer: their winner, its cost and the load it sustains."""
    if not finalists:
        return {"winner": None, "label": None, "cost_per_hour": None, "max_load": None}
    winner = finalists[0]
    return {
        "winner": winner.id, "label": winner.label(), "cost_per_hour": planner.ctx.space.cost_per_hour(winner),
        "max_load": _max_load(views.get("max_load"), planner.ctx.top_rate_per_s),
    }


def _calibration(planner: Planner, raw_answer: dict[str, Any] | None) -> dict[str, Any]:
    """Which answer the plan gives: calibrated from a real server (with the raw profiles' answer beside it), or from
    raw profiles alone, with how optimistic raw profiles were measured to be."""
    space = planner.ctx.space
    files = sorted({option.calibration for option in space.hardware.values() if option.calibration}
                   | {spec.calibration.file for spec in planner.ctx.scenario.nodes if spec.calibration is not None})
    if files:
        return {"calibrated": True, "files": files, "raw_profile": raw_answer}
    return {"calibrated": False, "files": [], "raw_profile": None, "note": f"sized from raw profiles: {RAW_PROFILE_NOTE}"}


def plan_context(scenario: Scenario) -> PlanContext:
    """What the search of a scenario's plan works from: base scenario, space, SLO checks, targets and run lengths."""
    spec = scenario.plan
    base = with_load_curve(scenario.replace("plan", None), spec.load)
    checks = plan_checks(base, spec)
    precision = spec.precision
    return PlanContext(
        scenario=scenario, spec=spec, base=base, space=Space(base, spec), checks=checks, targets=latency_targets(base, checks),
        rates_per_s=target_rates_per_s(base, spec.load), seed=scenario.run.seed,
        full_requests=requests_per_replication(checks, precision.tail_events, precision.min_requests, precision.max_requests),
        screen_requests=requests_per_replication(checks, precision.screen_tail_events, precision.min_requests, precision.max_requests),
    )


def space_loads(scenario: Scenario) -> tuple[float, list[tuple[str, float | None]]]:
    """The plan's top target load, and each configuration of its space there: its label and offered load of theory
    (≥ 1: it cannot keep up; None: excluded from the search, the label saying why). Bad input in any configuration
    raises ScenarioError, as the plan would. What ``latsim validate`` checks of a plan instead of its base node."""
    context = plan_context(scenario)
    space, rate = context.space, context.top_rate_per_s
    found: list[tuple[str, float | None]] = []
    for config in space.configurations():
        reason = space.exclusion(config)
        if reason is not None:
            found.append((f"{config.label()}: excluded ({reason})", None))
        else:
            found.append((config.label(), offered_load(space.apply(at_rate(context.base, rate), config))))
    return rate, found


def load_result(folder: Path) -> dict[str, Any]:
    """The ``plan.json`` of a results folder, checked to be one (a ScenarioError naming the file otherwise)."""
    path = Path(folder) / RESULT_FILE
    try:
        document = parse_json(read_regular_file(path, MAX_RESULT_BYTES).decode("utf-8"), allow_nan=False)
    except UnusableFile as reason:
        raise ScenarioError(f"{path}: cannot read the plan's results: it {reason} (run latsim plan --out {folder} first)") from None
    except (UnicodeDecodeError, ValueError) as error:
        raise ScenarioError(f"{path}: not a plan's results (not JSON: {str(error)[:100]})") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT or document.get("format_version") != FORMAT_VERSION:
        raise ScenarioError(f"{path}: not a latsim plan's results file (format {FORMAT!r} version {FORMAT_VERSION})")
    problem = check_plan_document(document)
    if problem is not None:
        raise ScenarioError(f"{path}: not a sound plan's results file: {problem} (run latsim plan again to remake it)")
    return document


# -- the results document --------------------------------------------------------------------------


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _number(value: Fraction | None) -> float | None:
    return None if value is None else float(value)


def _outcome(outcome: Outcome | None, planner: Planner) -> dict[str, Any] | None:
    """An outcome as plain data: the verdict, every bound's numbers, utilisation and the run's notes."""
    if outcome is None:
        return None
    summary = outcome.result.get("summary") or {}
    node = planner.ctx.space.scenario.nodes[planner.ctx.space.node_index].name
    utilizations = [
        stats["utilization"]["estimate"] for name, stats in summary.get("nodes", {}).items()
        if name == node or name.startswith(node + "-")
    ]
    return {
        "rate_per_s": outcome.rate_per_s, "requests": outcome.requests, "replications": planner.ctx.replications,
        "full": outcome.full, **outcome.judgement.as_dict(),
        "utilization": sum(utilizations) / len(utilizations) if utilizations else None,
        "offered_load": summary.get("offered_load"), "notes": summary.get("notes", []),
        "batch_sizes": _batch_sizes(summary),
    }


def _batch_sizes(summary: dict[str, Any]) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for stats in summary.get("nodes", {}).values():
        for size, count in stats.get("batch_sizes", {}).items():
            sizes[size] = sizes.get(size, 0) + count
    return dict(sorted(sizes.items(), key=lambda item: int(item[0])))


def _max_load(found: MaxLoad | None, target_per_s: float) -> dict[str, Any] | None:
    """A maximum load's bracket, the loads left inconclusive inside it, and its headroom over the top target in %."""
    if found is None:
        return None
    return {
        "low_per_s": found.low_per_s, "high_per_s": _finite(found.high_per_s), "full": found.full,
        "headroom_percent": headroom_percent(found.low_per_s, target_per_s),
        "inconclusive_per_s": found.inconclusive_per_s, "evaluations": len(found.outcomes), "limit": found.limit,
    }


def headroom_percent(max_load_per_s: float, target_per_s: float) -> float | None:
    """How far a maximum load is above the target, in % of the target (max load / target − 1; None: no load met)."""
    return 100 * (max_load_per_s / target_per_s - 1) if max_load_per_s > 0 else None


def _theory(planner: Planner, config: Configuration, rate_per_s: float) -> dict[str, Any] | None:
    theory = planner.known_theory(config)
    if theory is None:
        return None
    bounds = []
    for target in planner.ctx.targets:
        lower, method = theory.lower_bound_ms(target, rate_per_s)
        bounds.append({"label": target.label, "lower_bound_ms": lower, "method": method, "estimate_ms": theory.estimate_ms(target, rate_per_s)})
    return {"offered_load": theory.offered_load(rate_per_s), "capacity_per_s": _finite(theory.capacity_per_s), "bounds": bounds}


def _configuration(planner: Planner, config: Configuration) -> dict[str, Any]:
    space = planner.ctx.space
    outcomes = planner.at_target.get(config, {})
    loads = planner.max_loads.get(config, {})
    fate = planner.fate.get(config)
    return {
        "id": config.id, "label": config.label(), "params": config.params, "cost_per_hour": space.cost_per_hour(config),
        "quality": space.quality(config), "fate": {"category": fate[0], "reason": fate[1]} if fate else None,
        "screen": _outcome(outcomes.get("screen"), planner), "full": _outcome(outcomes.get("full"), planner),
        "max_load": {
            "screen": _max_load(loads.get("screen"), planner.ctx.top_rate_per_s), "full": _max_load(loads.get("full"), planner.ctx.top_rate_per_s),
        },
        "theory": _theory(planner, config, planner.ctx.top_rate_per_s),
    }


def _winner(planner: Planner, winner: Configuration, views: dict[Any, Any]) -> dict[str, Any]:
    """The winner's load curve (every full-length verdict at any load), what-if view, swapped variants and detail."""
    outcomes = [planner.at_target[winner]["full"], *views["max_load"].outcomes]
    outcomes += [value for key, value in views.items() if isinstance(key, tuple) and key[0] in ("curve", "what_if")]
    by_rate: dict[float, Outcome] = {}
    for outcome in outcomes:
        if outcome.rate_per_s not in by_rate or outcome.requests > by_rate[outcome.rate_per_s].requests:
            by_rate[outcome.rate_per_s] = outcome
    curve = [{**_outcome(by_rate[rate], planner), "theory": _theory(planner, winner, rate)} for rate in sorted(by_rate)]
    target = planner.ctx.top_rate_per_s
    what_if = [
        {"factor": key[1], **_outcome(value, planner)} for key, value in views.items() if isinstance(key, tuple) and key[0] == "what_if"
    ]
    variants = []
    for key, value in views.items():
        if isinstance(key, tuple) and key[0] == "variant":
            swapped = key[1]
            variants.append({
                "variant": swapped.params["variant"], "id": swapped.id, "quality": planner.ctx.space.quality(swapped),
                "excluded": planner.ctx.space.exclusion(swapped), "cost_per_hour": planner.ctx.space.cost_per_hour(swapped),
                **_outcome(value, planner),
            })
    detail_result = views["detail"]
    detail = detail_result.get("detail")
    if detail is not None:
        detail = {**detail, "batch_sizes": _batch_sizes(detail_result["summary"]), "replications": detail_result["summary"]["replications"]}
    return {
        "id": winner.id, "target_per_s": target, "max_load": _max_load(views["max_load"], target), "curve": curve,
        "knee_per_s": _knee(curve), "what_if": what_if, "variants": variants, "detail": detail,
    }


def _inconclusive_cheaper(planner: Planner, finalists: list[Configuration]) -> list[dict[str, Any]]:
    """Configurations cheaper than the winner (any, without one) whose last verdict at the target load stayed inconclusive."""
    space = planner.ctx.space
    ceiling = space.cost_per_hour(finalists[0]) if finalists else math.inf
    found = []
    for config, outcomes in planner.at_target.items():
        last = outcomes.get("full") or outcomes.get("screen")
        if last.verdict == "inconclusive" and space.cost_per_hour(config) < ceiling:
            found.append({"id": config.id, "label": config.label(), "cost_per_hour": space.cost_per_hour(config), **_outcome(last, planner)})
    return sorted(found, key=lambda item: (item["cost_per_hour"], item["id"]))


def _knee(curve: list[dict[str, Any]]) -> float | None:
    """The lowest load whose first latency bound's estimate is at least twice its value at the lowest load simulated."""
    values = [(point["rate_per_s"], point["items"][0]["estimate"] if point["items"] else None) for point in curve]
    values = [(rate, value) for rate, value in values if value is not None]
    if len(values) < 2:
        return None
    baseline = values[0][1]
    return next((rate for rate, value in values[1:] if value >= 2 * baseline), None)


def _validity(planner: Planner, finalists: list[Configuration], views: dict[Any, Any]) -> tuple[bool, list[str]]:
    """VALID when a winner meets every SLO at full length on enough replications and tail events; else the reasons."""
    ctx = planner.ctx
    reasons = []
    if not finalists:
        reasons.append("no configuration of the space meets every SLO at the target load")
    if ctx.replications < MIN_REPLICATIONS:
        reasons.append(f"{ctx.replications} replications per point (fewer than {MIN_REPLICATIONS})")
    if finalists:
        requests = planner.at_target[finalists[0]]["full"].requests
        events = tail_events(ctx.checks, requests)
        if events is not None and events < MIN_TAIL_EVENTS:
            reasons.append(f"{float(events):,.0f} tail events per replication for the strictest SLO (fewer than {MIN_TAIL_EVENTS:,}): raise precision.tail_events")
        if views["max_load"].high_per_s is None:
            reasons.append("the winner's maximum load was not bracketed")
    return not reasons, reasons


def _document(
    planner: Planner, finalists: list[Configuration], views: dict[Any, Any], seconds: float, executor: str, exhaustive: bool, command: str
) -> dict[str, Any]:
    ctx = planner.ctx
    spec = ctx.spec
    space = ctx.space
    evaluator = planner.evaluator
    valid, reasons = _validity(planner, finalists, views)
    fates: dict[str, int] = {}
    for category, _ in planner.fate.values():
        fates[category] = fates.get(category, 0) + 1
    return {
        "format": FORMAT, "format_version": FORMAT_VERSION,
        "scenario": scenario_record(ctx.scenario),
        "inputs": {
            "targets_per_s": ctx.rates_per_s, "curve": [s.model_dump(mode="json") for s in spec.load.curve] if spec.load.curve else None,
            "objective": spec.objective, "top": spec.top, "seed": ctx.seed, "confidence": ctx.scenario.run.confidence,
            "slos": [{"label": c.label, "scope": c.scope, "metric": c.metric, "bound": c.bound, "upper": c.upper} for c in ctx.checks],
            "precision": {
                **spec.precision.model_dump(mode="json"), "full_requests": ctx.full_requests, "screen_requests": ctx.screen_requests,
                "full_tail_events": _number(tail_events(ctx.checks, ctx.full_requests)),
                "screen_tail_events_expected": _number(tail_events(ctx.checks, ctx.screen_requests)),
                "max_load_tolerance": spec.max_load_tolerance,
            },
            "node": space.scenario.nodes[space.node_index].name, "space": space.dimensions(), "space_size": space.size,
            "hardware": [{"name": name, "cost_per_hour": option.cost_per_hour, "cost_per_worker_per_hour": option.cost_per_worker_per_hour,
                          "device": option.device, **space.bundles[name].describe()}
                         for name, option in space.hardware.items()],
            "cost_per_hour": spec.cost_per_hour, "cost_per_worker_per_hour": spec.cost_per_worker_per_hour, "versions": versions(), "executor": executor, "command": command, "exhaustive": exhaustive,
        },
        "search": {
            "seconds": seconds, "points_simulated": evaluator.simulated, "points_reused": evaluator.reused,
            "point_seconds": evaluator.point_seconds,
            "screened_at_target": sum(1 for o in planner.at_target.values() if "screen" in o),
            "confirmed_at_target": sum(1 for o in planner.at_target.values() if "full" in o),
            "not_confirmed": fates,
        },
        "configurations": [_configuration(planner, config) for config in space.configurations()],
        "finalists": [config.id for config in finalists],
        "winner": _winner(planner, finalists[0], views) if finalists else None,
        "inconclusive_cheaper": _inconclusive_cheaper(planner, finalists),
        "valid": valid, "invalid_reasons": reasons,
    }
