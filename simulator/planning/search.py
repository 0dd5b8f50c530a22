"""The search: which configurations to simulate, at which loads and lengths, to answer the plan without brute force.

1. **Definitions and theory** rule configurations out without simulating: a variant below the
   quality floor or not profiled; utilisation ≥ 1, or a sound latency lower bound above an SLO
   (``theory``). By monotonicity a configuration ruled out this way rules out fewer replicas too.
2. **Screening** (short runs, ``precision.screen_tail_events``): in each group (everything but the
   replica count) the fewest replicas not violating the SLOs, found by bisection on the replica
   ladder from the analytic guess. More replicas never lower capacity, so a violated count rules
   out every smaller one, and a count that is not violated makes every larger one unneeded.
3. **Maximum sustainable load** of each group's candidate: bracket from the analytic estimate, then
   bisect on the arrival rate with the same verdict rule, to ``max_load_tolerance``. A load the
   configuration met already (the target) is the floor of the bracket; a load left inconclusive is
   neither met nor violated, and the bisection narrows each side of it.
4. **Confirmation** with full runs (``precision.tail_events``), cheapest first, until ``top``
   configurations meet every SLO and no unconfirmed candidate could rank above them; a candidate
   that fails is replaced by its group's next replica count.
5. **The winner** gets a full-length maximum load, loads around the target (the load curve and
   the what-if view), its model variant swapped, and a run that keeps its records for the plots.

``exhaustive`` (a check of the above) replaces 1.–4. by full runs at every point not excluded by
definition. Every verdict is an ``Outcome`` of :func:`judge`; inconclusive points are rerun at
twice the length on fresh streams (the rerun alone decides) up to ``precision.extensions`` times.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass, field
from typing import Any

from simulator.planning.load import rounded_rate
from simulator.planning.points import Evaluator, Point, Search
from simulator.planning.space import Configuration, Space
from simulator.planning.theory import LatencyTarget, NodeTheory
from simulator.planning.verdict import Check, Judgement, judge
from simulator.scenario.plan import PlanSpec
from simulator.scenario.schema import Scenario

BRACKET_STEP = 1.25  # factor between the loads that bracket a maximum load from an estimate
MAX_BRACKET_STEPS = 40
MAX_BISECTIONS = 24  # a bracket 1.25^40 wide narrows to 1 % in 2 × 10 halvings: a bound that keeps progress finite
DETAIL_REPLICATIONS = 3  # replications whose records and time series the report draws (the first of the full run's)
SCREEN_TOLERANCE_FACTOR = 2  # screened maximum loads are bisected to twice the plan's tolerance (full runs: to it)
CURVE_FRACTIONS = (0.5, 0.75)  # loads below the target (× target) simulated for the winner's load curve


@dataclass(frozen=True)
class PlanContext:
    """Everything the search needs: the plan, its base scenario, space, bounds, targets and run lengths."""

    scenario: Scenario  # as loaded, with its plan
    spec: PlanSpec
    base: Scenario  # the load curve applied, the plan left out: what configurations change
    space: Space
    checks: list[Check]
    targets: list[LatencyTarget]
    rates_per_s: list[float]  # target loads, ascending
    seed: int
    full_requests: int
    screen_requests: int

    @property
    def replications(self) -> int:
        return self.spec.precision.replications

    @property
    def top_rate_per_s(self) -> float:
        return self.rates_per_s[-1]


@dataclass(frozen=True)
class Outcome:
    """A configuration judged at one load: the verdict of its last (longest) run."""

    config: Configuration
    rate_per_s: float
    full: bool
    requests: int
    judgement: Judgement
    result: dict[str, Any]

    @property
    def verdict(self) -> str:
        return self.judgement.verdict


@dataclass
class MaxLoad:
    """The maximum sustainable load: met at ``low_per_s``, violated at ``high_per_s`` (None: no bracket found), and
    neither at the loads ``inconclusive_per_s`` between them."""

    low_per_s: float
    high_per_s: float | None
    full: bool
    outcomes: list[Outcome] = field(default_factory=list)
    inconclusive_per_s: list[float] = field(default_factory=list)

    @property
    def limit(self) -> str:
        """What stops the configuration at ``high_per_s``: the bounds its run there did not meet, or its capacity (theory)."""
        if self.high_per_s is None:
            return "no failing load was found"
        at_high = [outcome for outcome in self.outcomes if outcome.rate_per_s == self.high_per_s]
        if not at_high:
            return "capacity: utilisation reaches 1 there (theory)"
        return at_high[-1].judgement.reason


class Planner:
    """Runs the search over an evaluator (store + executor) and records what happened to every configuration."""

    def __init__(self, context: PlanContext, evaluator: Evaluator | None) -> None:
        """``evaluator`` None: a planner asked only for its bounds (``plan_bound``), never to search."""
        self.ctx = context
        self.evaluator = evaluator
        self.fate: dict[Configuration, tuple[str, str]] = {}  # configuration → (category, reason) when never confirmed at full length
        self.at_target: dict[Configuration, dict[str, Outcome]] = {}  # "screen" / "full" → the last outcome at the top target
        self.max_loads: dict[Configuration, dict[str, MaxLoad]] = {}
        self._theory: dict[Configuration, NodeTheory] = {}

    # -- theory ---------------------------------------------------------------------------------

    def theory(self, config: Configuration) -> NodeTheory:
        """The configuration's closed-form model at the top target load: built once per group, scaled to its replicas."""
        if config not in self._theory:
            first = config.with_replicas(self.ctx.space.replicas[0])
            router = config.params.get("router") or {"policy": self.ctx.base.router.policy}
            if config == first or router["policy"] == "priority_lanes":
                scenario = self.evaluator.scenario(config, self.ctx.top_rate_per_s)
                self._theory[config] = NodeTheory(scenario, self.ctx.space.node_index, self.ctx.top_rate_per_s)
            else:
                self._theory[config] = self.theory(first).at_replicas(config.replicas)
        return self._theory[config]

    def known_theory(self, config: Configuration) -> NodeTheory | None:
        """The configuration's closed-form model if the search built one (None: it was never considered)."""
        return self._theory.get(config)

    def ruled_out(self, config: Configuration) -> str | None:
        """Why theory alone says the configuration fails at some target load (None: it may meet them)."""
        theory = self.theory(config)
        for rate in self.ctx.rates_per_s:
            reason = theory.rules_out(self.ctx.targets, rate)
            if reason is not None:
                return reason
            for check in self.ctx.checks:
                if check.metric == "goodput_per_s":
                    arrivals = rate * float(sum(theory.class_shares[k] for k in theory.indices(check.scope)))
                    if check.bound > arrivals:
                        return f"arrivals {arrivals:.4g}/s below {check.label}"
        return None

    # -- coroutines: one verdict, all targets, a replica ladder, a maximum load -----------------

    def decide(self, config: Configuration, rate_per_s: float, full: bool) -> Search[Outcome]:
        """The verdict at one load; an inconclusive run is repeated at twice the length on fresh streams (judged alone:
        not the same draws again plus more), within the budget."""
        precision = self.ctx.spec.precision
        requests = self.ctx.full_requests if full else self.ctx.screen_requests
        for extension in range(precision.extensions + 1):
            (result,) = yield [Point(config, rate_per_s, self.ctx.replications, requests, attempt=extension)]
            judgement = judge(result, self.ctx.checks)
            longer = min(2 * requests, precision.max_requests)
            if judgement.verdict != "inconclusive" or longer == requests or extension == precision.extensions:
                break
            requests = longer
        return Outcome(config, rate_per_s, full, requests, judgement, result)

    def decide_targets(self, config: Configuration, full: bool) -> Search[list[Outcome]]:
        """Verdicts at the target loads, lowest first, stopping at the first that is not met."""
        outcomes = []
        for rate in self.ctx.rates_per_s:
            outcome = yield from self.decide(config, rate, full)
            outcomes.append(outcome)
            if outcome.verdict != "met":
                break
        self.at_target.setdefault(config, {})["full" if full else "screen"] = outcomes[-1]
        return outcomes

    def ladder(self, group: tuple[tuple[str, str], ...]) -> Search[Configuration | None]:
        """The fewest replicas of a group whose screening verdict is not *violated* (None: none), by bisection."""
        rungs = [Configuration(group, replicas) for replicas in self.ctx.space.replicas]
        feasible = []
        for config in rungs:
            reason = self.ruled_out(config)
            if reason is None:
                feasible.append(config)
            else:
                self.fate[config] = ("theory", reason)
        guess = next((i for i, config in enumerate(feasible) if self._estimates_meet(config)), 0)
        low, high, probe = 0, len(feasible), guess
        while low < high:
            yield (math.ceil(math.log2(high - low + 1)) + (probe is not None)) * self.targets_bound()
            middle = probe if probe is not None and low <= probe < high else (low + high) // 2
            probe = None
            outcomes = yield from self.decide_targets(feasible[middle], full=False)
            if outcomes[-1].verdict == "violated":
                low = middle + 1
            else:
                high = middle
        for index, config in enumerate(feasible):
            if config not in self.at_target:
                side = "fewer replicas than a count that violates" if index < low else "more replicas than needed"
                self.fate[config] = ("monotonicity", side)
        return feasible[low] if low < len(feasible) else None

    def _estimates_meet(self, config: Configuration) -> bool:
        theory = self.theory(config)
        return all(
            (estimate := theory.estimate_ms(target, rate)) is not None and estimate <= target.bound_ms
            for rate in self.ctx.rates_per_s for target in self.ctx.targets
        )

    def met_floor_per_s(self, config: Configuration, full: bool) -> float | None:
        """The top target load if the configuration met every SLO at the targets (at full length; or at screening too when
        ``full`` is False): a load it is known to sustain, so the floor of its maximum load's bracket (None: none known)."""
        outcomes = self.at_target.get(config, {})
        kinds = ("full",) if full else ("screen", "full")
        met = any(kind in outcomes and outcomes[kind].verdict == "met" for kind in kinds)
        return self.ctx.top_rate_per_s if met else None

    def max_load(
        self, config: Configuration, full: bool, start_per_s: float | None = None, step: float = BRACKET_STEP,
        floor_per_s: float | None = None,
    ) -> Search[MaxLoad]:
        """The highest load the configuration meets the SLOs at: step up from ``start_per_s`` to a violated load (and down to
        a met one), then bisect between the highest met load and the lowest violated one. A load left inconclusive is
        neither: the bisection narrows each side of it. ``floor_per_s``, a load already met, is the bracket's floor."""
        theory = self.theory(config)
        capacity = theory.capacity_per_s if theory.unbounded else math.inf
        verdicts: dict[float, str] = {} if floor_per_s is None else {floor_per_s: "met"}
        outcomes: list[Outcome] = []
        ceiling: list[float] = []  # the capacity, once the steps up reach it (theory: no steady state from there on)

        def judge_at(rate_per_s: float) -> Search[None]:
            outcome = yield from self.decide(config, rate_per_s, full)
            outcomes.append(outcome)
            verdicts[rate_per_s] = outcome.verdict

        def bracket() -> tuple[float, float | None, list[float]]:
            """The highest met load below the lowest violated one (0: none), that violated load, and the inconclusive between."""
            violated = [rate for rate, verdict in verdicts.items() if verdict == "violated"] + ceiling
            high = min(violated) if violated else None
            low = max((rate for rate, verdict in verdicts.items() if verdict == "met" and (high is None or rate < high)), default=0.0)
            inside = sorted(r for r, v in verdicts.items() if v == "inconclusive" and low < r and (high is None or r < high))
            return low, high, inside

        rate = rounded_rate(min(start_per_s or theory.start_rate_per_s(self.ctx.targets), 0.999 * capacity))
        if floor_per_s is not None and rate <= floor_per_s:
            rate = rounded_rate(floor_per_s * step)
        steps = 0
        while bracket()[1] is None and steps < MAX_BRACKET_STEPS:
            if rate >= capacity:
                ceiling.append(capacity)
                break
            yield from judge_at(rate)
            steps += 1
            rate = rounded_rate(rate * step)
        while bracket()[0] == 0 and steps < MAX_BRACKET_STEPS:
            yield from judge_at(rounded_rate(min(verdicts) / step))
            steps += 1
        tolerance = self.ctx.spec.max_load_tolerance * (1 if full else SCREEN_TOLERANCE_FACTOR)
        for bisections in range(MAX_BISECTIONS):
            low, high, inside = bracket()
            if high is None or low == 0:
                break
            gaps = [(low, inside[0]), (inside[-1], high)] if inside else [(low, high)]
            yield min(MAX_BISECTIONS - bisections, _bisections_left(gaps, tolerance)) * self.decide_bound()
            wide = [(below, above) for below, above in gaps if (above - below) / below > tolerance]
            middle = rounded_rate(math.sqrt(wide[0][0] * wide[0][1])) if wide else None
            if middle is None or middle in verdicts:
                break
            yield from judge_at(middle)
        low, high, inside = bracket()
        result = MaxLoad(low, high, full, outcomes, inside)
        self.max_loads.setdefault(config, {})["full" if full else "screen"] = result
        return result

    def detail(self, config: Configuration) -> Search[dict[str, Any]]:
        """The winner at the top target with its records and time series kept (the first replications of its full run)."""
        replications = min(DETAIL_REPLICATIONS, self.ctx.replications)
        (result,) = yield [Point(config, self.ctx.top_rate_per_s, replications, self.ctx.full_requests, detail=True)]
        return result

    # -- bounds on the points each search may ask for (what plan progress counts against) -------

    def decide_bound(self) -> int:
        return self.ctx.spec.precision.extensions + 1

    def targets_bound(self) -> int:
        return len(self.ctx.rates_per_s) * self.decide_bound()

    def ladder_bound(self) -> int:
        """A bisection over at most every rung takes ⌈log2(rungs + 1)⌉ probes, plus its first guess."""
        return (math.ceil(math.log2(len(self.ctx.space.replicas) + 1)) + 1) * self.targets_bound()

    def max_load_bound(self) -> int:
        return (MAX_BRACKET_STEPS + MAX_BISECTIONS) * self.decide_bound()

    def views_bound(self) -> int:
        """The winner's full maximum load, its detailed run, load curve, what-if loads and swapped variants."""
        variants = len(self.ctx.space.options.get("variant", []))
        return self.max_load_bound() + 1 + (len(CURVE_FRACTIONS) + len(self.ctx.spec.what_if_loads) + variants) * self.decide_bound()

    def rung_bound(self) -> int:
        """One configuration in the confirmation: a full-length verdict and a screened maximum load."""
        return self.targets_bound() + self.max_load_bound()

    def larger_rungs(self, config: Configuration) -> int:
        return sum(1 for replicas in self.ctx.space.replicas if replicas > config.replicas)

    def confirm_bound(self, queued: list[Configuration]) -> int:
        """Confirming ``queued`` and the larger rungs that may replace them (each at most once), then the winner's views."""
        return sum(1 + self.larger_rungs(config) for config in queued) * self.rung_bound() + self.views_bound()

    def plan_bound(self, exhaustive: bool) -> int:
        """Every point a search of this plan may ask for, before it starts: every group a candidate at its fewest replicas."""
        space = self.ctx.space
        groups = [group for group in space.groups() if space.exclusion(Configuration(group, space.replicas[0])) is None]
        first = len(groups) * (len(space.replicas) * self.targets_bound() if exhaustive else self.ladder_bound())
        fewest = [Configuration(group, space.replicas[0]) for group in groups]
        return first + len(groups) * self.max_load_bound() + self.confirm_bound(fewest)

    # -- the phases ------------------------------------------------------------------------------

    def search(self, exhaustive: bool) -> tuple[list[Configuration], dict[Any, Any]]:
        """Every phase in turn: the finalists, ranked, and the winner's views (empty without a winner)."""
        candidates = self.candidates(exhaustive)
        self.screen_max_loads(candidates, self.confirm_bound(candidates))
        finalists = self.confirm(candidates, exhaustive)
        views = self.winner_views(finalists[0]) if finalists else {}
        self.evaluator.finish()
        return finalists, views

    def candidates(self, exhaustive: bool) -> list[Configuration]:
        """Each group's fewest replicas that (may) meet the SLOs: by screening, or by full runs everywhere."""
        space = self.ctx.space
        groups = []
        for group in space.groups():
            reason = space.exclusion(Configuration(group, space.replicas[0]))
            if reason is None:
                groups.append(group)
            else:
                for replicas in space.replicas:
                    self.fate[Configuration(group, replicas)] = (reason.split(":", 1)[0], reason)
        fewest = [Configuration(group, space.replicas[0]) for group in groups]
        later = len(groups) * self.max_load_bound() + self.confirm_bound(fewest)
        if not exhaustive:
            found = self.evaluator.drive({group: self.ladder(group) for group in groups}, dict.fromkeys(groups, self.ladder_bound()), later)
            return [config for config in found.values() if config is not None]
        every = [Configuration(group, replicas) for group in groups for replicas in space.replicas]
        outcomes = self.evaluator.drive({config: self.decide_targets(config, full=True) for config in every},
                                        dict.fromkeys(every, self.targets_bound()), later)
        fewest: dict[tuple[tuple[str, str], ...], Configuration] = {}
        for config in every:  # each group's replica counts in ascending order
            if outcomes[config][-1].verdict == "met":
                fewest.setdefault(config.choices, config)
        return list(fewest.values())

    def screen_max_loads(self, candidates: list[Configuration], later: int = 0) -> None:
        """Screened maximum loads of the candidates not searched yet, or searched below the target load they have met since.
        ``later``: a bound on the points of what follows (for progress)."""
        floors = {config: self.met_floor_per_s(config, full=False) for config in candidates}
        wanted = [
            config for config in candidates
            if "screen" not in self.max_loads.get(config, {}) or self.max_loads[config]["screen"].low_per_s < (floors[config] or 0)
        ]
        self.evaluator.drive({config: self.max_load(config, full=False, floor_per_s=floors[config]) for config in wanted},
                             dict.fromkeys(wanted, self.max_load_bound()), later)

    def objective(self, config: Configuration) -> float:
        """What the plan minimises: cost per hour, or cost per million requests at the (screened) maximum load."""
        cost = self.ctx.space.cost_per_hour(config)
        if self.ctx.spec.objective == "cost_per_hour":
            return cost
        low = self.max_loads[config]["screen"].low_per_s
        return cost / (low * 3600) * 1e6 if low > 0 else math.inf

    def rank_key(self, config: Configuration) -> tuple[float, float, str]:
        """Objective, then the larger latency margin (full runs), then the id (ties are stable)."""
        margin = self.at_target[config]["full"].judgement.margin
        return self.objective(config), -(margin if margin is not None else -math.inf), config.id

    def confirm(self, candidates: list[Configuration], exhaustive: bool) -> list[Configuration]:
        """Full-length verdicts in objective order until ``top`` configurations meet and none unconfirmed could beat them."""
        top = self.ctx.spec.top
        if exhaustive:
            return sorted(candidates, key=self.rank_key)[:top]
        queue = sorted(candidates, key=lambda c: (self.objective(c), c.id))
        finalists: list[Configuration] = []
        while queue:
            if len(finalists) >= top:
                bar = self.objective(sorted(finalists, key=self.rank_key)[top - 1])
                if self.objective(queue[0]) > bar:
                    break
            wave = queue[:top]
            wave += [c for c in queue[top:] if self.objective(c) == self.objective(wave[-1])]
            queue = queue[len(wave):]
            after = sum(self.max_load_bound() + self.larger_rungs(config) * self.rung_bound() for config in wave)  # screens, successors
            outcomes = self.evaluator.drive({config: self.decide_targets(config, full=True) for config in wave},
                                            dict.fromkeys(wave, self.targets_bound()), self.confirm_bound(queue) + after)
            successors = []
            for config in wave:
                if outcomes[config][-1].verdict == "met":
                    finalists.append(config)
                elif (successor := self._next_rung(config)) is not None:
                    successors.append(successor)
            self.screen_max_loads(successors + [config for config in wave if config in finalists], self.confirm_bound(queue + successors))
            queue = sorted(queue + successors, key=lambda c: (self.objective(c), c.id))
        for config in queue:
            self.fate.setdefault(config, ("cost", f"not confirmed: {self.ctx.spec.top} configurations rank above it"))
        return sorted(finalists, key=self.rank_key)[:top]

    def _next_rung(self, config: Configuration) -> Configuration | None:
        larger = [r for r in self.ctx.space.replicas if r > config.replicas]
        if not larger:
            return None
        successor = config.with_replicas(larger[0])
        self.fate.pop(successor, None)
        return successor

    def winner_views(self, winner: Configuration) -> dict[str, Any]:
        """The winner's full maximum load, load curve, what-if loads, swapped variants and detailed run."""
        target = self.ctx.top_rate_per_s
        screened = self.max_loads.get(winner, {}).get("screen")
        start = screened.low_per_s if screened is not None and screened.low_per_s > 0 else None
        searches: dict[Any, Search[Any]] = {
            "max_load": self.max_load(winner, True, start, 1 + 2 * self.ctx.spec.max_load_tolerance, self.met_floor_per_s(winner, True)),
            "detail": self.detail(winner),
        }
        for fraction in CURVE_FRACTIONS:
            searches[("curve", fraction)] = self.decide(winner, rounded_rate(target * fraction), True)
        for factor in self.ctx.spec.what_if_loads:
            searches[("what_if", factor)] = self.decide(winner, rounded_rate(target * factor), True)
        variants = self.ctx.space.options.get("variant", [])
        current = dict(winner.choices).get("variant")
        for text in variants:
            swapped = winner.with_choice("variant", json.loads(text))
            reason = self.ctx.space.exclusion(swapped)
            if text != current and (reason is None or reason.startswith("quality")):
                searches[("variant", swapped)] = self.decide(swapped, target, True)
        bounds = {name: self.max_load_bound() if name == "max_load" else 1 if name == "detail" else self.decide_bound() for name in searches}
        return self.evaluator.drive(searches, bounds)


def _bisections_left(gaps: list[tuple[float, float]], tolerance: float) -> int:
    """The most loads a maximum-load bisection may still judge from its gaps: (low, high), or (low, first inconclusive) and
    (last inconclusive, high). Each judged load halves a gap on the log scale; an inconclusive one splits a lone gap in
    two, and a verdict beyond the inconclusive loads merges two gaps into one (``_lone``, ``_pair``)."""
    def halvings(below: float, above: float) -> int:  # one more than exact halving needs: midpoints are rounded rates
        return math.ceil(math.log2(math.log(above / below) / math.log1p(tolerance))) + 1 if above > below * (1 + tolerance) else 0

    needed = [halvings(below, above) for below, above in gaps]
    return _lone(needed[0]) if len(needed) == 1 else _pair(needed[0], needed[1])


@functools.cache
def _lone(halvings: int) -> int:
    """Judged loads, at most, to narrow one gap that needs ``halvings`` halvings (a split leaves two halves)."""
    return 0 if halvings <= 0 else 1 + max(_lone(halvings - 1), _pair(halvings - 1, halvings - 1))


@functools.cache
def _pair(below: int, above: int) -> int:
    """The same for the two gaps either side of the inconclusive loads: a judged load halves one, or merges them into one."""
    steps = [count for needed, other in ((below, lambda n: _pair(n, above)), (above, lambda n: _pair(below, n))) if needed > 0
             for count in (other(needed - 1), _lone(needed - 1))]
    return 1 + max(steps) if steps else 0
