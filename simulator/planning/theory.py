"""Closed-form answers a plan uses before and beside simulation: capacity, sound lower bounds, estimates.

The hook is one class, :class:`NodeTheory`, built once per configuration and asked at any arrival
rate (``latsim analyze`` may replace it). What it says, and how far to trust it:

- **offered load** and **capacity** (the rate at which the offered load reaches 1) come from the
  runner's stability check: exact for the mean rates (a batching node gets its best case, full
  batches, so the capacity is an upper bound). At load ≥ 1 with unbounded queues a configuration
  cannot meet any SLO: *ruled out*.
- **a sound lower bound** on a latency percentile: a request's latency is at least its own service
  time, so the percentile of latency is at least that percentile of the service time (of the
  fastest batch size the node may run; with a margin for drawing the service times). Above the SLO
  bound: *ruled out*. For an exactly Markovian node (Poisson arrivals, exponential service, FIFO,
  no batching, device, cache, drops or partitions) the **Erlang C** sojourn percentile of one
  pooled M/M/N queue over all N workers is a lower bound too (a central queue is the best any
  router can do with exponential service), and exact for one replica.
- **an estimate** of the percentile (M/G/c: Erlang C wait probability, a Lee–Longton mean wait,
  the measured service times convolved with an exponential wait): used only to start searches
  and shown beside the simulation, never to rule anything out.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np

from simulator.analytic import erlang_c, mmc_sojourn_quantile_ms
from simulator.errors import UnstableSystemError
from simulator.metrics.collector import ALL, QUANTILES
from simulator.model.build import service_models
from simulator.model.machine import mean_speed_factor
from simulator.planning.verdict import Check
from simulator.registry import ROUTERS
from simulator.runner.calibration import calibrated
from simulator.runner.checks import check_stability, unbounded_queues
from simulator.runner.inputs import class_rates_per_s
from simulator.runner.plan import plan_run
from simulator.scenario.schema import Scenario
from simulator.service.base import build_service_model
from simulator.units import MS_PER_S

DRAWS = 20_000  # service times drawn per class and batch size for quantiles and convolutions
NO_QUEUE_LIMIT = 10**9  # a waiting room this large never fills; it lets the stability check report any load
BATCH_TARGET_UTILIZATION = 0.8  # the estimate assumes the smallest batch size that keeps the node this busy


@dataclass(frozen=True)
class LatencyTarget:
    """A bound on a percentile of latency: ``level`` quantile of ``scope`` at most ``bound_ms`` (from a check)."""

    label: str
    scope: str
    level: float
    bound_ms: float


def latency_targets(scenario: Scenario, checks: list[Check]) -> list[LatencyTarget]:
    """The checks that bound a latency percentile: percentile checks, and deadline-met ratios (the ratio-quantile ≤ deadline)."""
    deadlines = {c.name: c.deadline_ms for c in scenario.workload.classes}
    targets = []
    for check in checks:
        if check.metric.startswith(("latency_ms.", "latency_or_drop_ms.")):
            targets.append(LatencyTarget(check.label, check.scope, QUANTILES[check.metric.split(".", 1)[1]], check.bound))
        elif check.metric == "deadline_met_ratio":
            scope_deadlines = set(deadlines.values()) if check.scope == ALL else {deadlines[check.scope]}
            if len(scope_deadlines) == 1:
                targets.append(LatencyTarget(check.label, check.scope, check.bound, scope_deadlines.pop()))
    return targets


def offered_load(scenario: Scenario) -> float:
    """The runner's offered load of the scenario, also when it is 1 or more (which the runner would refuse)."""
    try:
        return check_stability(plan_run(scenario))
    except UnstableSystemError:
        unbounded = scenario.replace("nodes[0].queue_capacity", NO_QUEUE_LIMIT)  # same load; a loss system is not refused
        return check_stability(plan_run(unbounded))


class NodeTheory:
    """The searched node of one configuration in closed form, at any total arrival rate (req/s).

    Building one costs what building the scenario's service models costs (profiles are read and
    filtered); :meth:`at_replicas` gives the same node with another replica count for nothing.
    """

    def __init__(self, scenario: Scenario, node_index: int, rate_per_s: float) -> None:
        scenario = calibrated(scenario)
        self.scenario = scenario
        spec = scenario.nodes[node_index]
        # a speed process can make calls faster than the profile: no sound lower bound from the profile's times then
        self.machine = spec.speed is not None or spec.overhead is not None or spec.occupancy_slowdown is not None
        self.speed_factor = mean_speed_factor(spec.speed) if spec.speed is not None else 1.0
        self.least_overhead_ms = min(spec.overhead.mean_ms) if spec.overhead is not None else 0.0
        load = offered_load(scenario)
        self.capacity_per_s = rate_per_s / load if load > 0 else math.inf
        self.replicas, self.workers = spec.replicas, spec.workers
        self.unbounded = unbounded_queues(scenario)
        rates = np.asarray(class_rates_per_s(scenario, scenario.run.seed), dtype=float)
        self.class_shares = rates / rates.sum()
        self.models = service_models(scenario)[node_index]
        largest = spec.batching.max_batch_size if spec.batching is not None else 1
        self.batch_sizes = sorted({b for b in (1, 2, 4, 8, 16, 32, 64, 128, 256) if b < largest} | {largest})
        rng = np.random.default_rng(0)
        self.samples = {(k, b): model.draw_block(rng, DRAWS, b) for k, model in enumerate(self.models) for b in self.batch_sizes}
        self.copy_ms = {b: _copies_ms(scenario, node_index, b) for b in self.batch_sizes}
        self.servers = spec.workers * spec.replicas
        self.load_aware = ROUTERS.policy_class(scenario.router).load_aware
        self.pooled = self.load_aware or spec.replicas == 1
        self.single_path = len(scenario.nodes) == 1 or scenario.pipeline is not None
        self.markovian = self.single_path and _markovian(scenario, node_index, self.models)

    def at_replicas(self, replicas: int) -> NodeTheory:
        """The same node with ``replicas`` replicas: identical replicas share the load evenly (or pool it), so the
        capacity scales with their number (not so behind priority_lanes, whose reserved replicas carry only urgent work)."""
        if self.scenario.router.policy == "priority_lanes":
            raise ValueError("priority_lanes: the capacity does not scale with the replica count; build a NodeTheory per count")
        scaled = copy.copy(self)
        scaled.capacity_per_s = self.capacity_per_s * replicas / self.replicas
        scaled.replicas, scaled.servers = replicas, self.workers * replicas
        scaled.pooled = self.load_aware or replicas == 1
        return scaled

    def offered_load(self, rate_per_s: float) -> float:
        return rate_per_s / self.capacity_per_s

    def indices(self, scope: str) -> list[int]:
        """The class indices a scope (a class name or ``all``) covers."""
        names = [c.name for c in self.scenario.workload.classes]
        return list(range(len(names))) if scope == ALL else [names.index(scope)]

    def lower_bound_ms(self, target: LatencyTarget, rate_per_s: float) -> tuple[float | None, str]:
        """A sound lower bound on the target's percentile and how it was found (None: no bound for this layout)."""
        if not self.single_path or self.machine:
            return None, ""
        margin = 3 * math.sqrt(target.level * (1 - target.level) / DRAWS)
        level = max(0.0, target.level - margin)
        service = min(float(np.quantile(self.samples[(k, b)], level)) for k in self.indices(target.scope) for b in self.batch_sizes)
        if self.markovian and self.offered_load(rate_per_s) < 1:
            mean_ms = float(np.mean([self.models[k].mean_ms() for k in self.indices(target.scope)]))
            erlang_ms = mmc_sojourn_quantile_ms(self.servers, rate_per_s / MS_PER_S, 1 / mean_ms, target.level)
            if erlang_ms > service:
                return erlang_ms, "Erlang C (pooled M/M/N)"
        return service, "service time"

    def estimate_ms(self, target: LatencyTarget, rate_per_s: float) -> float | None:
        """An M/G/c estimate of the target's percentile at ``rate_per_s`` (None: overloaded or not estimable)."""
        if not self.single_path or self.offered_load(rate_per_s) >= 1:
            return None
        servers = self.servers if self.pooled else self.workers
        arrival_per_ms = rate_per_s / MS_PER_S / (1 if self.pooled else self.replicas)
        mix = self.class_shares
        batch = self.batch_sizes[-1]
        for size in self.batch_sizes:
            mean_ms = sum(w * self.models[k].mean_ms(size) for k, w in enumerate(mix)) + self.copy_ms[size]
            if arrival_per_ms * mean_ms / (servers * size) <= BATCH_TARGET_UTILIZATION:
                batch = size
                break
        calls_per_ms = arrival_per_ms / batch
        every = np.concatenate([self.samples[(k, batch)] for k in range(len(self.models)) if mix[k] > 0])
        every = every * self.speed_factor + self.least_overhead_ms + self.copy_ms[batch]
        mean_ms, scv = float(every.mean()), float(every.var() / every.mean() ** 2)
        offered = calls_per_ms * mean_ms
        if offered >= servers:
            return None
        waits = erlang_c(servers, offered)
        drain_per_ms = (servers / mean_ms - calls_per_ms) / ((1 + scv) / 2)  # rate of the conditional wait (Lee–Longton)
        own = np.concatenate([self.samples[(k, batch)] for k in self.indices(target.scope)]) + self.copy_ms[batch]
        return _quantile_of_sum(own, waits, drain_per_ms, target.level)

    def rules_out(self, targets: list[LatencyTarget], rate_per_s: float) -> str | None:
        """Why theory alone says the configuration cannot meet the targets at ``rate_per_s`` (None: it may)."""
        load = self.offered_load(rate_per_s)
        if load >= 1 and self.unbounded:
            return f"utilisation ≥ 1 ({load:.2f} at {rate_per_s:,.0f}/s)"
        for target in targets:
            bound, method = self.lower_bound_ms(target, rate_per_s)
            if bound is not None and bound > target.bound_ms:
                return f"{method} bound {bound:.3g} ms above {target.label}"
        return None

    def start_rate_per_s(self, targets: list[LatencyTarget]) -> float:
        """Where to start bracketing the maximum load: the largest fraction of capacity whose estimates meet every target."""
        if not math.isfinite(self.capacity_per_s):
            return 1.0
        for fraction in (0.95, 0.9, 0.8, 0.7, 0.6, 0.5, 0.35, 0.25, 0.1):
            rate = fraction * self.capacity_per_s
            estimates = [self.estimate_ms(target, rate) for target in targets]
            if all(estimate is not None and estimate <= target.bound_ms for estimate, target in zip(estimates, targets)):
                return rate
        return 0.05 * self.capacity_per_s


def _copies_ms(scenario: Scenario, node_index: int, batch: int) -> float:
    """Mean H2D + D2H time of a call of ``batch`` on a device node (0 without one)."""
    device = scenario.nodes[node_index].device
    if device is None:
        return 0.0
    return sum(build_service_model(c, scenario.base_dir).mean_ms(batch) for c in (device.h2d, device.d2h) if c is not None)


def _markovian(scenario: Scenario, node_index: int, models: list) -> bool:
    """True when the node is exactly M/M/N-like: Poisson arrivals, exponential service, FIFO, nothing dropped or batched."""
    spec = scenario.nodes[node_index]
    workload = scenario.workload
    poisson = workload.arrival is not None and workload.arrival.process == "poisson" and all(c.arrival is None for c in workload.classes)
    services = [c.service or spec.service for c in workload.classes]
    exponential = all(s.distribution == "scipy" and s.name == "expon" and not s.params.get("loc") for s in services)
    same_mean = len({m.mean_ms() for m in models}) == 1
    plain = (
        (spec.batching is None or spec.batching.max_batch_size == 1) and spec.device is None and spec.model_cache is None
        and spec.speed is None and spec.overhead is None and spec.occupancy_slowdown is None
        and spec.queue_capacity is None and spec.queue_policy is None and spec.admission.policy == "none"
        and scenario.cache is None and scenario.partitioning.partitions == 1 and not scenario.events
    )
    fifo = spec.discipline.policy == "fifo" or len(workload.classes) == 1
    return poisson and exponential and same_mean and plain and fifo


def _quantile_of_sum(service_ms: np.ndarray, wait_probability: float, drain_per_ms: float, level: float) -> float:
    """The ``level`` quantile of S + W: S resampled from ``service_ms``, W = 0 w.p. 1 − C, else Exp(drain)."""
    target = 1 - level

    def tail(t_ms: float) -> float:
        late = service_ms > t_ms
        waited = np.where(late, 1.0, np.exp(-drain_per_ms * np.clip(t_ms - service_ms, 0, None)))
        return float(np.mean(late) * (1 - wait_probability) + wait_probability * np.mean(waited))

    low, high = 0.0, float(service_ms.max()) + 1 / drain_per_ms
    while tail(high) > target:
        high *= 2
    for _ in range(60):
        middle = (low + high) / 2
        low, high = (middle, high) if tail(middle) > target else (low, middle)
    return high
