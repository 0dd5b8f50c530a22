"""Queueing theory beside the simulation: the closed-form answer for a scenario wherever one applies.

:func:`analyze` walks a scenario and, per class and node, gives what theory says — exact where a
formula is exact, labelled where it is an approximation or a bound — and, for every formula a
feature of the scenario rules out, the reason, never a wrong number:

- arrivals: Poisson streams (split at random by class, partition and ``random`` routing stay
  Poisson); one deterministic stream, or ``round_robin`` over replicas (Erlang gaps), is a
  renewal stream (G/G approximations and Kingman's bound); time-varying, Markov-modulated or
  traced arrivals, and ``events``, leave no steady state to compute;
- a node at Poisson arrivals: M/M/c (Erlang C, wait and sojourn tails and quantiles) when every
  class has one exponential service time; M/G/1 (Pollaczek–Khinchine mean, Takács' second moment,
  P(wait) = ρ); M/G/c by Lee–Longton (= Allen–Cunneen with Poisson arrivals, an approximation);
  non-preemptive priority (Cobham for M/G/1, M/M/c with one rate), preemptive-resume priority
  M/G/1; M/G/c/c loss (Erlang B, exact for any service); M/G/1-PS (a device shared by f(k) = k
  with workers enough that more never wait); EDF's overall mean wait by the conservation law;
- a renewal stream at one server: GI/M/1 exact (σ = A*(μ(1 − σ)): wait probability, mean, wait and
  sojourn tails) when every class has one exponential service time, else Kingman's approximation and
  his G/G/1 upper bound;
- a pipeline: Jackson/Burke tandem of M/M/c stages (exact), else per-stage approximations;
- a result cache: Che's approximation (LRU), the exact TTL ratio, the perfect-LFU bound (LFU).

Batching, load-aware routing, finite waiting rooms, timeouts, admission control of firm classes,
device copies or slowdown, model caches, node overhead or speed processes, and service models
whose draws form a process (order matters) each rule formulas out, with the reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

import simulator.analytic as analytic
from simulator.errors import LatsimError
from simulator.metrics.collector import ALL, QUANTILES
from simulator.model.build import service_models
from simulator.registry import PARTITIONERS
from simulator.runner.calibration import calibrated
from simulator.runner.inputs import class_rates_per_s, key_popularity
from simulator.scenario.schema import Scenario
from simulator.service.base import ServiceTimeModel, build_service_model
from simulator.units import MS_PER_S

if TYPE_CHECKING:
    import pandas as pd

    from simulator.runner.result import RunResult

Kind = Literal["exact", "approximation", "upper_bound"]
PS_OVERFLOW_PROBABILITY = 1e-4  # M/G/1-PS holds while P(more requests than workers) = ρ^(c+1) stays below this


@dataclass(frozen=True)
class Prediction:
    """One analytic figure: ``metric`` of a class or node (a path of the run summary), and how it was found."""

    scope: Literal["class", "node"]
    name: str
    metric: str
    value: float
    formula: str
    kind: Kind = "exact"


@dataclass(frozen=True)
class RuledOut:
    """A formula the scenario's assumptions rule out, and why (``scope`` scenario, node or class)."""

    scope: str
    name: str
    reason: str
    unstable: bool = False  # ruled out because its offered load is 1 or more


@dataclass
class AnalyticReport:
    """Every prediction theory gives for a scenario, and every formula it could not give, with the reason."""

    scenario: str
    predictions: list[Prediction] = field(default_factory=list)
    ruled_out: list[RuledOut] = field(default_factory=list)

    @property
    def unstable(self) -> list[RuledOut]:
        """The nodes theory finds overloaded (offered load ≥ 1: no steady state)."""
        return [ruled for ruled in self.ruled_out if ruled.unstable]

    def get(self, metric: str, name: str = ALL, scope: str = "class") -> Prediction | None:
        """The prediction of ``metric`` for a class (or node), if theory gave one."""
        return next((p for p in self.predictions if (p.scope, p.name, p.metric) == (scope, name, metric)), None)

    def to_frame(self) -> pd.DataFrame:
        """One row per prediction: scope, name, metric, value, kind, formula."""
        import pandas as pd

        columns = ["scope", "name", "metric", "value", "kind", "formula"]
        return pd.DataFrame([{column: getattr(p, column) for column in columns} for p in self.predictions], columns=columns)

    def compare(self, result: RunResult) -> pd.DataFrame:
        """Predictions beside the simulated estimates and intervals, with a verdict per row.

        ``agrees``: an exact value inside the interval, or a bound the estimate respects;
        ``beyond CI``: an exact value outside it; ``bound exceeded``; ``approximation``: shown, not judged;
        ``not simulated``: the run has no such figure (e.g. the second moment of the wait).
        """
        frame = self.to_frame().merge(result.to_frame(), on=["scope", "name", "metric"], how="left")
        frame["verdict"] = [_verdict(row) for row in frame.itertuples(index=False)]
        return frame


def _verdict(row: Any) -> str:
    if row.estimate is None or row.estimate != row.estimate:
        return "not simulated"
    if row.kind == "approximation":
        return "approximation"
    if row.kind == "upper_bound":
        return "agrees" if row.ci_low is None or row.ci_low <= row.value else "bound exceeded"
    if row.ci_low is None or row.ci_high is None:
        return "no interval"
    tolerance = 1e-9 * max(abs(row.value), 1e-12)
    return "agrees" if row.ci_low - tolerance <= row.value <= row.ci_high + tolerance else "beyond CI"


class _Refused(Exception):
    """A formula does not apply: the message says which assumption fails."""


class _Unstable(_Refused):
    """No formula applies because the offered load is 1 or more: queues grow without bound."""


@dataclass(frozen=True)
class _Arrivals:
    """The stream reaching one node instance: Poisson, or renewal with squared coefficient of variation ``scv``."""

    poisson: bool
    scv: float
    why: str  # how the stream came to be what it is, for formula labels
    unit_gaps: analytic.GapTransform | None = None  # the Laplace transform of its gaps scaled to mean 1, where known


# One station's figures: (class index, or None for the node; metric; value; formula; kind).
_Figure = tuple[int | None, str, float, str, Kind]
_Figures = list[_Figure]
# Class figures gathered over stations: (class index, metric, kind) → [(class rate there, value, formula)].
_PerClass = dict[tuple[int, str, Kind], list[tuple[float, float, str]]]


def _combined(kinds: set[str]) -> Kind:
    """The kind of a figure made of parts of these kinds: exact only if all are."""
    return kinds.pop() if len(kinds) == 1 else "approximation"  # type: ignore[return-value]


def _exponential_rate_per_ms(config: Any) -> float | None:
    """1/mean when the settings give an exponential time (scipy expon at loc 0, one-phase hyperexponential), else None."""
    if getattr(config, "scale", 1.0) != 1.0 or getattr(config, "shift_ms", 0.0) != 0.0:
        return None
    if config.distribution == "scipy" and config.name == "expon" and config.params.get("loc", 0.0) == 0.0:
        return 1.0 / config.params.get("scale", 1.0)
    if config.distribution == "hyperexponential" and len(config.means_ms) == 1:
        return 1.0 / config.means_ms[0]
    return None


class _Analysis:
    """The walk over one scenario that fills an :class:`AnalyticReport`."""

    def __init__(self, scenario: Scenario, seed: int | None) -> None:
        self.scenario = scenario
        self.report = AnalyticReport(scenario.name)
        self.classes = scenario.workload.classes
        self.rates_per_ms = np.array(class_rates_per_s(scenario, scenario.run.seed if seed is None else seed)) / MS_PER_S
        self.models = service_models(scenario)

    def rule_out(self, scope: str, name: str, reason: str, unstable: bool = False) -> None:
        """Record a formula the scenario rules out, and why."""
        self.report.ruled_out.append(RuledOut(scope, name, reason, unstable))

    def add(self, scope: Literal["class", "node"], name: str, metric: str, value: float, formula: str, kind: Kind) -> None:
        """Record one prediction."""
        self.report.predictions.append(Prediction(scope, name, metric, float(value), formula, kind))

    # -- the scenario as a whole -----------------------------------------------------------------

    def run(self) -> AnalyticReport:
        """Cache, then the nodes (or pipeline stages) under the scenario's arrivals; every refusal recorded."""
        scenario = self.scenario
        hit_ratio = self.cache() if scenario.cache is not None else None
        if scenario.events:
            kinds = ", ".join(sorted({event.type for event in scenario.events}))
            self.rule_out("scenario", scenario.name, f"events ({kinds}) take capacity away or change the load for a while: no steady state")
            return self.report
        arrivals = self.arrivals()
        if arrivals is None:
            return self.report
        if scenario.cache is not None:
            self.cached_nodes(hit_ratio)
        elif scenario.pipeline is not None:
            self.pipeline(arrivals)
        else:
            self.nodes(arrivals)
        return self.report

    def arrivals(self) -> _Arrivals | None:
        """The kind of the merged arrival stream, or None (with the reason recorded) when no formula takes it."""
        workload = self.scenario.workload
        processes = [workload.arrival] if workload.arrival is not None else []
        processes += [c.arrival for c in self.classes if c.arrival is not None]
        kinds = {process.process for process in processes}
        if kinds == {"poisson"}:
            return _Arrivals(True, 1.0, "Poisson arrivals", analytic.gamma_gaps(1.0, 1.0))
        if kinds == {"deterministic"} and len(processes) == 1:
            return _Arrivals(False, 0.0, "deterministic arrivals", analytic.deterministic_gaps(1.0))
        varying = sorted(kinds - {"poisson", "deterministic"})
        reason = (
            f"arrival process {', '.join(varying)}: time-varying, modulated or traced load has no steady-state formula"
            if varying
            else "several arrival streams, not all Poisson: their merge is not a renewal stream"
        )
        self.rule_out("scenario", self.scenario.name, reason)
        return None

    def cache(self) -> float | None:
        """Predict the result cache's hit ratio; returns it (None if no formula applies)."""
        scenario = self.scenario
        cache = scenario.cache
        popularity = key_popularity(scenario)
        keys = scenario.workload.keys
        if keys is None or keys.popularity == "trace" or popularity is None:
            self.rule_out("class", ALL, "cache_hit_ratio: a key trace is not independent requests (IRM)")
            return None
        if cache.scope == "per_node" and len(scenario.node_names()) > 1:
            self.rule_out("class", ALL, "cache_hit_ratio: per-node caches see key streams split by the router")
            return None
        probabilities = popularity.probabilities()
        policy = cache.policy
        if policy.policy == "lru":
            ratio = analytic.che_lru_hit_ratio(probabilities, policy.capacity_entries)
            self.add("class", ALL, "cache_hit_ratio", ratio, "Che's approximation (LRU, independent requests)", "approximation")
        elif policy.policy == "lfu":
            ratio = analytic.lfu_static_hit_ratio(probabilities, policy.capacity_entries)
            self.add("class", ALL, "cache_hit_ratio", ratio, "perfect-LFU limit (no policy without foresight does better)", "upper_bound")
        elif policy.policy == "ttl":
            total_per_ms = float(self.rates_per_ms.sum())
            live = float(np.sum(total_per_ms * probabilities * policy.ttl_ms / (1 + total_per_ms * probabilities * policy.ttl_ms)))
            if live > 0.5 * policy.capacity_entries:
                self.rule_out("class", ALL, f"cache_hit_ratio: the TTL cache's capacity binds (about {live:.0f} live entries)")
                return None
            ratio = analytic.ttl_hit_ratio(probabilities, total_per_ms, policy.ttl_ms)
            self.add("class", ALL, "cache_hit_ratio", ratio, "TTL: Σ pᵢ λᵢT/(1 + λᵢT) (Poisson, capacity not binding)", "exact")
        else:
            self.rule_out("class", ALL, f"cache_hit_ratio: no formula for cache policy {policy.policy!r}")
            return None
        return ratio

    # -- where requests go -----------------------------------------------------------------------

    def partition_shares(self) -> np.ndarray:
        """Each partition's share of requests: keys hashed (or ranged) independently split Poisson streams."""
        partitions = self.scenario.partitioning.partitions
        if partitions == 1:
            return np.ones(1)
        popularity = key_popularity(self.scenario)
        return PARTITIONERS.build(self.scenario.partitioning, popularity.catalog_size).shares(popularity.probabilities())

    def split(self, arrivals: _Arrivals, instances: int) -> _Arrivals:
        """The stream one of ``instances`` replicas receives from the router (raises _Refused for load-aware routers)."""
        if instances == 1:
            return arrivals
        policy = self.scenario.router.policy
        gaps = arrivals.unit_gaps
        if policy == "random":
            if arrivals.poisson:
                return arrivals
            split = None if gaps is None else analytic.random_split_gaps(analytic.scaled_gaps(gaps, 1 / instances), 1 / instances)
            return _Arrivals(False, 1 - (1 - arrivals.scv) / instances, "randomly split renewal", split)
        if policy == "round_robin":
            every = None if gaps is None else analytic.round_robin_gaps(analytic.scaled_gaps(gaps, 1 / instances), instances)
            if arrivals.poisson:
                return _Arrivals(False, 1 / instances, f"Poisson split round-robin over {instances} replicas (Erlang-{instances} gaps)", every)
            return _Arrivals(False, arrivals.scv / instances, f"{arrivals.why}, round-robin over {instances} replicas", every)
        raise _Refused(
            f"load-aware routing ({policy}) couples the replicas' queues: no closed form (random routing would be M/G/c per replica)"
        )

    def nodes(self, arrivals: _Arrivals) -> None:
        """Every node instance of a scenario without a pipeline: one pool of replicas per partition."""
        specs = self.scenario.nodes
        shares = self.partition_shares()
        instances = sum(spec.replicas for spec in specs)
        try:
            reaching = self.split(arrivals, instances)
        except _Refused as refused:
            self.rule_out("scenario", self.scenario.name, str(refused))
            return
        if len(shares) > 1:  # keys hashed over partitions thin the stream at random: its gaps' law is not followed
            reaching = replace(reaching, unit_gaps=None)
        per_class: _PerClass = {}
        names = iter(self.scenario.node_names())
        for share in shares:
            for spec_index, spec in enumerate(specs):
                for _ in range(spec.replicas):
                    name = next(names)
                    rates = self.rates_per_ms * share / instances
                    figures = self.station(spec, self.models[spec_index], rates, reaching, name)
                    self.collect(name, rates, figures, per_class)
        self.class_figures(per_class, latency_extra_ms=self.network_round_trip_ms())

    def collect(self, name: str, rates: np.ndarray, figures: _Figures | None, per_class: _PerClass) -> None:
        """File a station's node figures under its name and keep its class figures, weighted by class rate."""
        for index, metric, value, formula, kind in figures or []:
            if index is None:
                self.add("node", name, metric, value, formula, kind)
            elif rates[index] > 0:
                per_class.setdefault((index, metric, kind), []).append((float(rates[index]), value, formula))

    def class_figures(self, per_class: _PerClass, latency_extra_ms: float) -> None:
        """Class figures: rate-weighted means over the instances serving the class (quantiles only where all agree)."""
        totals: dict[tuple[str, Kind], list[tuple[float, float, str]]] = {}
        for (index, metric, kind), parts in per_class.items():
            weights = np.array([part[0] for part in parts])
            values = np.array([part[1] for part in parts])
            formula = " / ".join(sorted({part[2] for part in parts}))
            is_quantile = metric.partition(".")[2] in QUANTILES
            if is_quantile and not np.allclose(values, values[0], rtol=1e-9):
                continue  # a mixture of different instances' quantiles is not their average
            if metric.startswith("latency_ms"):
                if latency_extra_ms and is_quantile:
                    continue
                values = values + latency_extra_ms
            value = float(np.dot(weights, values) / weights.sum())
            self.add("class", self.classes[index].name, metric, value, formula, kind)
            totals.setdefault((metric, kind), []).append((float(weights.sum()), value, formula))
        self.all_classes(totals)

    def all_classes(self, totals: dict[tuple[str, Kind], list[tuple[float, float, str]]]) -> None:
        """The ``all`` row of a metric every class with arrivals has: rate-weighted for means and
        probabilities, and for quantiles only where every class has the same one."""
        active = int(np.count_nonzero(self.rates_per_ms))
        if len(self.classes) == 1:
            return  # the class is all of them: its rows say it
        for (metric, kind), parts in totals.items():
            values = np.array([part[1] for part in parts])
            quantile = metric.partition(".")[2] in QUANTILES
            if len(parts) != active or metric.endswith("second_moment") or (quantile and not np.allclose(values, values[0], rtol=1e-9)):
                continue
            weights = np.array([part[0] for part in parts])
            value = float(np.dot(weights, values) / weights.sum())
            self.add("class", ALL, metric, value, " / ".join(sorted({part[2] for part in parts})), kind)

    def network_round_trip_ms(self) -> float:
        """Mean network time per request, both legs (0 without a network)."""
        network = self.scenario.network
        if network is None:
            return 0.0
        return sum(build_service_model(leg, self.scenario.base_dir).mean_ms() for leg in network.legs().values() if leg)

    def cached_nodes(self, hit_ratio: float | None) -> None:
        """With a result cache only node utilizations are given, on the miss stream (approximately Poisson)."""
        self.rule_out(
            "class", ALL,
            "latency and waits with a result cache: they mix hits and misses, and the miss stream is not Poisson",
        )
        if hit_ratio is None or self.scenario.pipeline is not None:
            return
        shares = self.partition_shares()
        instances = sum(spec.replicas for spec in self.scenario.nodes)
        names = iter(self.scenario.node_names())
        for share in shares:
            for spec_index, spec in enumerate(self.scenario.nodes):
                rates = self.rates_per_ms * share / instances * (1 - hit_ratio)
                means = np.array([model.mean_ms() for model in self.models[spec_index]])
                for _ in range(spec.replicas):
                    utilization = float(np.dot(rates, means)) / spec.workers
                    self.add("node", next(names), "utilization", utilization, "λ(1 − hit ratio)E[S]/c", "approximation")

    def pipeline(self, arrivals: _Arrivals) -> None:
        """A tandem of stages: exact for M/M/c FIFO stages at Poisson arrivals (Burke), else per-stage approximations."""
        scenario = self.scenario
        if scenario.partitioning.partitions > 1:
            self.rule_out("scenario", scenario.name, "a pipeline over partitions: not analysed")
            return
        specs = {spec.name: (index, spec) for index, spec in enumerate(scenario.nodes)}
        instance_names = iter(scenario.node_names())
        names = {spec.name: [next(instance_names) for _ in range(spec.replicas)] for spec in scenario.nodes}
        sums: dict[tuple[int, str], tuple[float, list[str], set[str]]] = {}
        stage_arrivals, burke = arrivals, arrivals.poisson
        for stage in scenario.pipeline.stages:
            index, spec = specs[stage]
            try:
                reaching = self.split(stage_arrivals, spec.replicas)
            except _Refused as refused:
                self.rule_out("node", stage, str(refused))
                return
            rates = self.rates_per_ms / spec.replicas
            for name in names[stage]:
                figures = self.station(spec, self.models[index], rates, reaching, name)
                if figures is None:
                    return
                if not burke:
                    figures = [(k, metric, value, f"{formula}, arrivals taken as Poisson", "approximation" if kind == "exact" else kind) for k, metric, value, formula, kind in figures]
                self.collect(name, rates, [figure for figure in figures if figure[0] is None], {})
            for k, metric, value, formula, kind in figures:
                if k is not None and metric in ("wait_ms.mean", "latency_ms.mean") and kind != "upper_bound":
                    total, formulas, kinds = sums.get((k, metric), (0.0, [], set()))
                    sums[(k, metric)] = (total + value, [*formulas, formula], kinds | {kind})
            burke = burke and spec.discipline.policy == "fifo" and all(_exponential_rate_per_ms(c.service or spec.service) for c in self.classes)
            stage_arrivals = _Arrivals(True, 1.0, "departures of an M/M/c stage (Burke)") if burke else stage_arrivals
        transfers_ms = build_service_model(scenario.pipeline.transfer, scenario.base_dir).mean_ms() * (len(scenario.pipeline.stages) - 1)
        network_ms = self.network_round_trip_ms()
        per_class: _PerClass = {}
        for (k, metric), (total, formulas, kinds) in sums.items():
            if metric == "latency_ms.mean":
                total += transfers_ms + network_ms
            formula = "tandem: " + " + ".join(dict.fromkeys(formulas)) + (" + transfers" if metric == "latency_ms.mean" else "")
            per_class[(k, metric, _combined(set(kinds)))] = [(float(self.rates_per_ms[k]), total, formula)]
        self.class_figures(per_class, latency_extra_ms=0.0)

    # -- one node instance -----------------------------------------------------------------------

    def station(self, spec: Any, models: Sequence[ServiceTimeModel], rates: np.ndarray, arrivals: _Arrivals, name: str) -> _Figures | None:
        """Figures of one node instance fed ``rates`` (per class, per ms), or None with the reason recorded."""
        try:
            self.check_station(spec, models)
            return _station_figures(spec, models, self.classes, rates, arrivals, [c.service or spec.service for c in self.classes])
        except _Refused as refused:
            self.rule_out("node", name, str(refused), isinstance(refused, _Unstable))
            return None

    def check_station(self, spec: Any, models: Sequence[ServiceTimeModel]) -> None:
        """Refuse the features no formula here covers."""
        if spec.batching is not None and spec.batching.max_batch_size > 1:
            raise _Refused("batching: a call's time and the wait depend on how many requests wait")
        if spec.model_cache is not None:
            raise _Refused("model cache: cold loads depend on the order of models requested")
        if spec.queue_policy is not None:
            raise _Refused("queue policy (timeouts, per-priority limits): requests leave the queue unserved")
        if spec.admission.policy != "none" and any(c.kind == "firm" for c in self.classes):
            raise _Refused(f"admission control ({spec.admission.policy}) drops firm requests: the queue is not M/G/c")
        for feature in ("overhead", "speed", "occupancy_slowdown"):
            if getattr(spec, feature, None) is not None:
                raise _Refused(f"node {feature}: the worker's time depends on the node's state")
        if any(model.ordered for model in models):
            raise _Refused("a service model whose draws form a process (order matters): the formulas assume independent times")
        device = spec.device
        if device is not None and (device.h2d is not None or device.d2h is not None):
            raise _Refused("device copies (h2d, d2h) around compute: copies and compute overlap across workers")
        if device is not None and device.concurrency_slowdown != "processor_sharing":
            raise _Refused("device concurrency slowdown: a call's time depends on how many compute at once (processor_sharing has a formula)")


def _station_figures(
    spec: Any, models: Sequence[ServiceTimeModel], classes: Sequence[Any], rates: np.ndarray, arrivals: _Arrivals, configs: Sequence[Any]
) -> _Figures:
    """The formulas for one node instance whose features passed :meth:`_Analysis.check_station`."""
    active = [k for k in range(len(classes)) if rates[k] > 0]
    c = spec.workers
    total = float(rates.sum())
    means = np.array([models[k].mean_ms() for k in range(len(classes))])
    seconds = np.array([models[k].second_moment_ms2() for k in range(len(classes))])
    mix = rates / total
    mean_ms = float(np.dot(mix, means))
    second_ms2 = float(np.dot(mix, seconds))
    figures: _Figures = []
    rho = total * mean_ms / c
    if spec.queue_capacity == 0:
        if not arrivals.poisson:
            raise _Refused("a loss system (queue_capacity 0) at non-Poisson arrivals: Erlang B needs Poisson arrivals")
        blocked = analytic.erlang_b(c, total * mean_ms)
        for k in active:
            figures.append((k, "drop_ratio", blocked, "Erlang B (M/G/c/c, insensitive to the service law)", "exact"))
            figures.append((k, "wait_ms.mean", 0.0, "loss system: no one waits", "exact"))
            figures.append((k, "latency_ms.mean", means[k], "loss system: latency is service", "exact"))
        figures.append((None, "utilization", total * mean_ms * (1 - blocked) / c, "carried load / c", "exact"))
        return figures
    if spec.device is not None:
        return _processor_sharing(figures, c, active, means, total, mean_ms, arrivals)
    policy = spec.discipline.policy
    exponential = {_exponential_rate_per_ms(configs[k]) for k in active}
    rate = exponential.pop() if len(exponential) == 1 and None not in exponential else None
    levels = sorted({classes[k].priority for k in active})
    fifo = policy == "fifo" or (policy in ("priority", "preemptive_priority") and len(levels) == 1)
    if spec.queue_capacity is not None:
        if not (arrivals.poisson and rate is not None and fifo):
            raise _Refused(f"a finite waiting room (queue_capacity {spec.queue_capacity}): exact for M/M/c/K (FIFO) only")
        _finite_waiting_room(figures, analytic.mmck(c, c + spec.queue_capacity, total, rate), active)
        return figures
    if rho >= 1:
        raise _Unstable(f"offered load {rho:.3f} ≥ 1: unstable, no steady state")
    figures.append((None, "utilization", rho, "λE[S]/c", "exact"))
    if fifo:
        _fifo(figures, c, total, mean_ms, second_ms2, active, means, arrivals, rate, models, mix)
    elif policy == "priority":
        _priority(figures, c, rates, active, means, seconds, classes, levels, arrivals, rate)
    elif policy == "preemptive_priority":
        if spec.discipline.mode != "resume" or c > 1 or not arrivals.poisson:
            raise _Refused("preemptive priority: a formula exists for preemptive-resume M/G/1 only")
        _preemptive(figures, rates, active, means, seconds, classes, levels)
    elif policy == "edf":
        if c > 1 or not arrivals.poisson or len({configs[k].model_dump_json() for k in active}) > 1:
            raise _Refused("EDF: per-class waits have no closed form (the overall mean is known for M/G/1 with one service law)")
        wait_ms = analytic.mg1_mean_wait_ms(total, mean_ms, second_ms2)
        raise _Refused(f"EDF: per-class waits have no closed form; all classes together wait {wait_ms:.4g} ms on average (conservation law)")
    else:
        raise _Refused(f"discipline {policy}: no formula")
    return figures


def _finite_waiting_room(figures: _Figures, queue: analytic.MMcK, active: list[int]) -> None:
    """M/M/c/K (FIFO): the birth–death chain's stationary law, at any load; waits are of admitted requests."""
    name = f"M/M/{queue.servers}/{queue.places} (birth–death)"
    figures.append((None, "utilization", queue.utilization, name, "exact"))
    figures.append((None, "mean_queue_length", queue.mean_queue_length, name, "exact"))
    for k in active:
        figures.append((k, "drop_ratio", queue.blocking_probability, f"{name}: P(all {queue.places} places taken)", "exact"))
        figures.append((k, "wait_ms.mean", queue.mean_wait_ms, name, "exact"))
        figures.append((k, "latency_ms.mean", queue.mean_wait_ms + 1 / queue.service_per_ms, name, "exact"))
        figures.append((k, "wait_probability", queue.wait_probability, name, "exact"))
        for level, q in QUANTILES.items():
            figures.append((k, f"wait_ms.{level}", queue.wait_quantile_ms(q), f"{name} wait tail (Erlang mixture)", "exact"))


def _fifo(
    figures: _Figures, c: int, total: float, mean_ms: float, second_ms2: float, active: list[int], means: np.ndarray,
    arrivals: _Arrivals, rate: float | None, models: Sequence[ServiceTimeModel], mix: np.ndarray,
) -> None:
    """FIFO (or one priority level): M/M/c exact, M/G/1 exact, M/G/c and G/G/c approximations, Kingman's bound."""
    if arrivals.poisson and rate is not None:
        wait_ms = analytic.mmc_mean_wait_ms(c, total, rate)
        name = f"M/M/{c} (Erlang C)"
        figures.append((None, "mean_queue_length", total * wait_ms, f"{name}, Little's law", "exact"))
        for k in active:
            figures.append((k, "wait_ms.mean", wait_ms, name, "exact"))
            figures.append((k, "latency_ms.mean", wait_ms + 1 / rate, name, "exact"))
            figures.append((k, "wait_probability", analytic.mmc_wait_probability(c, total, rate), name, "exact"))
            for level, q in QUANTILES.items():
                figures.append((k, f"wait_ms.{level}", analytic.mmc_wait_quantile_ms(c, total, rate, q), f"{name} wait tail", "exact"))
                figures.append((k, f"latency_ms.{level}", analytic.mmc_sojourn_quantile_ms(c, total, rate, q), f"{name} sojourn tail", "exact"))
        return
    if arrivals.poisson and c == 1:
        wait_ms = analytic.mg1_mean_wait_ms(total, mean_ms, second_ms2)
        thirds = [models[k].third_moment_ms3() for k in active]
        figures.append((None, "mean_queue_length", total * wait_ms, "Pollaczek–Khinchine, Little's law", "exact"))
        for k in active:
            figures.append((k, "wait_ms.mean", wait_ms, "Pollaczek–Khinchine (M/G/1)", "exact"))
            figures.append((k, "latency_ms.mean", wait_ms + means[k], "Pollaczek–Khinchine (M/G/1)", "exact"))
            figures.append((k, "wait_probability", total * mean_ms, "M/G/1: P(wait) = ρ", "exact"))
            if None not in thirds:
                third_ms3 = float(np.dot(mix[active], thirds) / mix[active].sum())
                figures.append((k, "wait_ms.second_moment", analytic.mg1_wait_second_moment_ms2(total, mean_ms, second_ms2, third_ms3), "Takács (M/G/1), ms²", "exact"))
        return
    if c == 1 and rate is not None and arrivals.unit_gaps is not None:
        _renewal_at_one_server(figures, analytic.gim1(analytic.scaled_gaps(arrivals.unit_gaps, 1 / total), total, rate), active, arrivals)
        return
    scv = second_ms2 / mean_ms**2 - 1
    if c == 1:
        wait_ms = analytic.kingman_mean_wait_ms(total, mean_ms, arrivals.scv, scv)
        bound_ms = analytic.kingman_gg1_wait_upper_bound_ms(total, mean_ms, arrivals.scv / total**2, second_ms2 - mean_ms**2)
        formula = f"Kingman (G/G/1, {arrivals.why})"
        for k in active:
            figures.append((k, "wait_ms.mean", wait_ms, formula, "approximation"))
            figures.append((k, "wait_ms.mean", bound_ms, "Kingman's G/G/1 bound", "upper_bound"))
            figures.append((k, "latency_ms.mean", wait_ms + means[k], formula, "approximation"))
        figures.append((None, "mean_queue_length", total * wait_ms, formula, "approximation"))
        return
    name = "Lee–Longton (M/G/c)" if arrivals.poisson else f"Allen–Cunneen (G/G/{c}, {arrivals.why})"
    wait_ms = analytic.allen_cunneen_mean_wait_ms(c, total, mean_ms, arrivals.scv, scv)
    figures.append((None, "mean_queue_length", total * wait_ms, name, "approximation"))
    for k in active:
        figures.append((k, "wait_ms.mean", wait_ms, name, "approximation"))
        figures.append((k, "latency_ms.mean", wait_ms + means[k], name, "approximation"))


def _renewal_at_one_server(figures: _Figures, queue: analytic.GIM1, active: list[int], arrivals: _Arrivals) -> None:
    """GI/M/1 (FIFO): renewal arrivals at one exponential server, exact through σ = A*(μ(1 − σ))."""
    name = f"GI/M/1 ({arrivals.why}; σ = {queue.sigma:.4g})"
    figures.append((None, "mean_queue_length", queue.mean_queue_length, f"{name}, Little's law", "exact"))
    for k in active:
        figures.append((k, "wait_ms.mean", queue.mean_wait_ms, name, "exact"))
        figures.append((k, "latency_ms.mean", queue.mean_wait_ms + 1 / queue.service_per_ms, name, "exact"))
        figures.append((k, "wait_probability", queue.sigma, name, "exact"))
        for level, q in QUANTILES.items():
            figures.append((k, f"wait_ms.{level}", queue.wait_quantile_ms(q), f"{name} wait tail", "exact"))
            figures.append((k, f"latency_ms.{level}", queue.sojourn_quantile_ms(q), f"{name} sojourn tail", "exact"))


def _levels(rates: np.ndarray, active: list[int], means: np.ndarray, seconds: np.ndarray, classes: Sequence[Any], levels: list[int]):
    """Per priority level (most urgent first): its rate, mean and second moment of service."""
    rows = []
    for level in levels:
        members = [k for k in active if classes[k].priority == level]
        rate = float(rates[members].sum())
        rows.append((members, rate, float(np.dot(rates[members], means[members]) / rate), float(np.dot(rates[members], seconds[members]) / rate)))
    return rows


def _priority(
    figures: _Figures, c: int, rates: np.ndarray, active: list[int], means: np.ndarray, seconds: np.ndarray,
    classes: Sequence[Any], levels: list[int], arrivals: _Arrivals, rate: float | None,
) -> None:
    """Non-preemptive priority: Cobham for M/G/1, the M/M/c form with one service rate."""
    if not arrivals.poisson:
        raise _Refused("priority at non-Poisson arrivals: no formula")
    rows = _levels(rates, active, means, seconds, classes, levels)
    if c == 1:
        waits = analytic.priority_mg1_mean_waits_ms([r[1] for r in rows], [r[2] for r in rows], [r[3] for r in rows])
        name = "Cobham (non-preemptive priority M/G/1)"
    elif rate is not None:
        waits = analytic.mmc_priority_mean_waits_ms(c, [r[1] for r in rows], rate)
        name = f"non-preemptive priority M/M/{c}"
    else:
        raise _Refused(f"priority M/G/{c} with several service laws: no closed form")
    for (members, level_rate, _, _), wait_ms in zip(rows, waits):
        for k in members:
            figures.append((k, "wait_ms.mean", wait_ms, name, "exact"))
            figures.append((k, "latency_ms.mean", wait_ms + means[k], name, "exact"))
    figures.append((None, "mean_queue_length", sum(r[1] * w for r, w in zip(rows, waits)), f"{name}, Little's law", "exact"))


def _preemptive(
    figures: _Figures, rates: np.ndarray, active: list[int], means: np.ndarray, seconds: np.ndarray, classes: Sequence[Any], levels: list[int]
) -> None:
    """Preemptive-resume priority M/G/1: per-level sojourns, each class's own service stretched by the levels above."""
    rows = _levels(rates, active, means, seconds, classes, levels)
    sojourns = analytic.preemptive_priority_mg1_mean_sojourns_ms([r[1] for r in rows], [r[2] for r in rows], [r[3] for r in rows])
    above = 0.0
    for (members, level_rate, level_mean, _), sojourn_ms in zip(rows, sojourns):
        stretch = 1 - above
        for k in members:
            figures.append((k, "latency_ms.mean", sojourn_ms - level_mean / stretch + means[k] / stretch, "preemptive-resume priority M/G/1", "exact"))
        above += level_rate * level_mean


def _processor_sharing(
    figures: _Figures, c: int, active: list[int], means: np.ndarray, total: float, mean_ms: float, arrivals: _Arrivals
) -> _Figures:
    """A device shared by f(k) = k: M/G/1-PS (load ρ = λE[S]) while more requests than workers are (nearly) never present."""
    if not arrivals.poisson:
        raise _Refused("processor sharing at non-Poisson arrivals: no formula")
    rho = total * mean_ms
    if rho >= 1:
        raise _Unstable(f"the shared device's load λE[S] = {rho:.3f} ≥ 1: unstable, no steady state")
    overflow = rho ** (c + 1)
    if overflow > PS_OVERFLOW_PROBABILITY:
        raise _Refused(f"processor sharing with {c} workers: P(more than {c} requests) = ρ^{c + 1} = {overflow:.2g}; a limited PS has no formula")
    for k in active:
        figures.append((k, "latency_ms.mean", analytic.mg1_ps_sojourn_given_size_ms(total, mean_ms, means[k]), "M/G/1-PS: E[S]/(1 − ρ)", "exact"))
    return figures


def analyze(scenario: Scenario, seed: int | None = None) -> AnalyticReport:
    """What queueing theory says about ``scenario``, per class and node, and which formulas its features rule out.

    ``seed`` only matters for arrival processes whose mean rate is drawn (default: the scenario's).
    """
    try:
        return _Analysis(calibrated(scenario, seed), seed).run()
    except ValueError as error:  # an analytic function refusing an input the walk let through
        raise LatsimError(f"{scenario.source}: analysis: {error}") from None

