"""The verdict rule of a plan: does a run meet every SLO, and by how much?

Each SLO bound is judged by the run's confidence interval: **met** when the whole interval is on
the right side of the bound, **violated** when the whole interval is on the wrong side, otherwise
**inconclusive** (run longer). A configuration meets the plan when every bound is met and violates
it as soon as one bound is violated. The interval ends are one-sided bounds at level (1 + c)/2 for
the run's confidence c. The *margin* of a bound is how far the estimate is from it, relative to the
bound (positive: inside); a configuration's margin is its smallest one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from simulator.errors import ScenarioError
from simulator.metrics.collector import ALL, QUANTILES
from simulator.scenario.plan import PlanSpec
from simulator.scenario.schema import Scenario


@dataclass(frozen=True)
class Check:
    """One bound of one class: ``metric`` (a dotted path in the class summary) must stay below (``upper``) or above ``bound``."""

    scope: str
    metric: str
    bound: float
    upper: bool
    label: str
    tail_probability: Fraction | None  # the tail a latency bound is about (sizes the runs), exact; None for drop ratios and rates

    def judge(self, summary: dict[str, Any]) -> dict[str, Any]:
        """This bound against one run: estimate, interval, verdict and margin (None when infinite)."""
        value = summary["classes"][self.scope]
        for part in _path(self.metric):
            value = value[part]
        estimate, low, high = value["estimate"], value["ci_low"], value["ci_high"]
        scale = abs(self.bound) or 1.0  # a bound of 0 (no drops at all): the margin is the share itself
        if self.upper:  # None is +∞ here: a drop counted as infinitely late
            near, far = low, high
            inside = far is not None and far <= self.bound
            outside = near is None or near > self.bound
            margin = None if estimate is None else (self.bound - estimate) / scale
        else:
            near, far = high, low
            inside = far is not None and far >= self.bound
            outside = near is not None and near < self.bound
            margin = None if estimate is None else (estimate - self.bound) / scale
        verdict = "met" if inside else "violated" if outside else "inconclusive"
        return {"label": self.label, "scope": self.scope, "estimate": estimate, "ci_low": low, "ci_high": high, "verdict": verdict, "margin": margin}


def _path(metric: str) -> list[str]:
    head, _, tail = metric.partition(".")
    return [head, tail] if tail else [head]


def plan_checks(scenario: Scenario, spec: PlanSpec) -> list[Check]:
    """The plan's SLOs as bounds; a class name that is not in the scenario is an error naming ``plan.slos``."""
    names = [c.name for c in scenario.workload.classes]
    checks = []
    for scope, slo in spec.slos.items():
        if scope != ALL and scope not in names:
            raise ScenarioError(f"{scenario.source}: plan.slos.{scope}: no such class; the classes are {names} (or {ALL})")
        who = "" if scope == ALL else f"{scope} "
        if slo.percentile is not None and slo.latency_ms is not None:
            distribution = "latency_or_drop_ms" if slo.count_drops else "latency_ms"
            tail = 1 - exact_fraction(QUANTILES[slo.percentile])
            checks.append(Check(scope, f"{distribution}.{slo.percentile}", slo.latency_ms, True, f"{who}{slo.percentile} ≤ {slo.latency_ms:g} ms", tail))
        if slo.min_deadline_met_ratio is not None:
            ratio = slo.min_deadline_met_ratio
            checks.append(Check(scope, "deadline_met_ratio", ratio, False, f"{who}deadline met ≥ {ratio:.4g}", 1 - exact_fraction(ratio) or None))
        if slo.max_drop_ratio is not None:
            checks.append(Check(scope, "drop_ratio", slo.max_drop_ratio, True, f"{who}drops ≤ {slo.max_drop_ratio:.4g}", None))
        if slo.min_goodput_per_s is not None:
            checks.append(Check(scope, "goodput_per_s", slo.min_goodput_per_s, False, f"{who}goodput ≥ {slo.min_goodput_per_s:g}/s", None))
    return checks


@dataclass(frozen=True)
class Judgement:
    """The verdict of one run against every bound, with each bound's numbers, and the smallest margin."""

    verdict: str
    items: list[dict[str, Any]]
    margin: float | None
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "items": self.items, "margin": self.margin, "reason": self.reason}


def judge(result: dict[str, Any], checks: list[Check]) -> Judgement:
    """Judge one point's stored result (status, summary): unstable runs violate; else the bounds decide."""
    if result["status"] != "ok":
        return Judgement("violated", [], None, "violated: unstable (offered load ≥ 1, or a queue outgrew run.max_queue_length)")
    items = [check.judge(result["summary"]) for check in checks]
    verdicts = {item["verdict"] for item in items}
    verdict = "violated" if "violated" in verdicts else "inconclusive" if "inconclusive" in verdicts else "met"
    margins = [item["margin"] for item in items]
    margin = None if not margins or any(m is None for m in margins) else min(margins)
    failing = [item["label"] for item in items if item["verdict"] != "met"]
    return Judgement(verdict, items, margin, f"{verdict}: {', '.join(failing)}" if failing else "")


def exact_fraction(value: float) -> Fraction:
    """A level as the decimal the user wrote (0.9 → 9/10; the binary 0.9 is 0.9000000000000000222…): tail counts stay exact."""
    return Fraction(repr(value))


def requests_per_replication(checks: list[Check], tail_events: int, minimum: int, maximum: int) -> int:
    """Measured requests per replication that put ``tail_events`` requests beyond the strictest bound's tail."""
    tails = [check.tail_probability for check in checks if check.tail_probability]
    needed = math.ceil(tail_events / min(tails)) if tails else minimum
    return max(minimum, min(maximum, needed))


def tail_events(checks: list[Check], requests: int) -> Fraction | None:
    """Expected requests per replication beyond the strictest bound's tail, at ``requests`` per replication (exact)."""
    tails = [check.tail_probability for check in checks if check.tail_probability]
    return requests * min(tails) if tails else None
