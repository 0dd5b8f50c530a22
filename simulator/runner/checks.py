"""Checks before a run: every batch size can be priced, the run's work is bounded, and the offered
load has a steady state. ``latsim validate`` runs exactly these."""

from __future__ import annotations

from simulator.errors import ScenarioError, UnstableSystemError
from simulator.model.build import service_models
from simulator.model.capacity import offered_load, waiting_bounded
from simulator.registry import PARTITIONERS
from simulator.random_streams import stream
from simulator.registry import ARRIVAL_PROCESSES
from simulator.runner.calibration import calibration_notes
from simulator.runner.inputs import built_policy, class_rates_per_s, key_popularity
from simulator.runner.plan import RunPlan
from simulator.scenario.schema import Scenario
from simulator.service.base import build_service_model
from simulator.service.slowdown import slowdown_factors


def service_fields(scenario: Scenario) -> dict[str, object]:
    """Every service-model setting of the scenario, by its field path."""
    fields: dict[str, object] = {}
    for index, spec in enumerate(scenario.nodes):
        fields[f"nodes[{index}].service"] = spec.service
        if spec.device is not None:
            fields |= {f"nodes[{index}].device.{name}": getattr(spec.device, name) for name in ("h2d", "d2h") if getattr(spec.device, name)}
    fields |= {f"workload.classes[{k}].service": c.service for k, c in enumerate(scenario.workload.classes) if c.service}
    fields |= {f"models.{name}.load": model.load for name, model in scenario.models.items()}
    if scenario.network is not None:
        fields |= {f"network.{name}": getattr(scenario.network, name) for name in ("delay", "request", "response")
                   if getattr(scenario.network, name) is not None}
    if scenario.cache is not None:
        fields["cache.hit_latency"] = scenario.cache.hit_latency
    if scenario.pipeline is not None:
        fields["pipeline.transfer"] = scenario.pipeline.transfer
    return fields


def check_service_models(scenario: Scenario) -> None:
    """Build every service model once, so a bad data file or profile is reported with the field that names it."""
    for field, config in service_fields(scenario).items():
        try:
            build_service_model(config, scenario.base_dir)
        except ScenarioError as error:
            raise ScenarioError(f"{scenario.source}: {field}: {error}") from None


def check_batch_sizes(scenario: Scenario) -> None:
    """Every service model a batching node uses must price its largest batch: fail before the run."""
    for index, spec in enumerate(scenario.nodes):
        if spec.batching is None:
            continue
        largest = spec.batching.max_batch_size
        configs = {
            f"workload.classes[{k}].service" if c.service else f"nodes[{index}].service": c.service or spec.service
            for k, c in enumerate(scenario.workload.classes)
        }
        if spec.device is not None:
            copies = {"h2d": spec.device.h2d, "d2h": spec.device.d2h}
            configs |= {f"nodes[{index}].device.{name}": config for name, config in copies.items() if config is not None}
        for field, config in configs.items():
            try:
                build_service_model(config, scenario.base_dir).mean_ms(largest)
            except ScenarioError as error:
                raise ScenarioError(
                    f"{scenario.source}: {field} (node {spec.name!r} batches up to {largest}): {error}"
                ) from None


def check_stability(plan: RunPlan) -> float:
    """Offered load of the scenario; raises UnstableSystemError if queues would grow forever.

    The load counts every request as a model call: cache hits, which lighten it, are not known
    before the run, so with a cache an overload is left to the run's queue-length guard.
    """
    scenario = plan.scenario
    check_service_models(scenario)
    check_batch_sizes(scenario)
    check_bounded_work(plan)
    shares = None
    popularity = key_popularity(scenario)
    if popularity is not None and scenario.partitioning.partitions > 1:
        shares = PARTITIONERS.build(scenario.partitioning, popularity.catalog_size).shares(popularity.probabilities())
    copy_ms, concurrency = {}, {}
    for spec in scenario.nodes:
        if spec.device is not None:
            copies = [build_service_model(c, scenario.base_dir) for c in (spec.device.h2d, spec.device.d2h) if c is not None]
            copy_ms[spec.name] = lambda batch, copies=copies: sum(copy.mean_ms(batch) for copy in copies)
            concurrency[spec.name] = _device_concurrency(slowdown_factors(spec.device, scenario.base_dir), spec.workers)
    load = offered_load(scenario, class_rates_per_s(scenario, plan.seed), service_models(scenario), shares, copy_ms, concurrency)
    if load >= 1 and unbounded_queues(scenario) and not finite_arrivals(scenario):
        raise UnstableSystemError(
            f"{scenario.source}: offered load is {load:.3f} of capacity (≥ 1): queues grow without "
            "bound and no steady state exists. Add workers/nodes, lower the arrival rate, or bound the waiting "
            "(nodes[].queue_capacity, a queue_policy that rejects after timeout_ms or past max_queue_size, or "
            "admission with firm classes) to simulate a loss system."
        )
    return load


def finite_arrivals(scenario: Scenario) -> bool:
    """True when every arrival stream is a finite trace: the run ends with it, so an overload is simulated as it is
    (its queues grow over the trace), not refused."""
    processes = [c.arrival for c in scenario.workload.classes if c.arrival is not None]
    if scenario.workload.arrival is not None:
        processes.append(scenario.workload.arrival)
    return bool(processes) and all(process.process == "trace" for process in processes)


def unbounded_queues(scenario: Scenario) -> bool:
    """True when an overload would grow queues forever: no cache (whose hits lighten the load) and no node whose
    waiting room is bounded (a queue capacity, reneging, a maximum queue size or admission)."""
    classes = scenario.workload.classes
    return scenario.cache is None and not any(waiting_bounded(spec, classes) for spec in scenario.nodes)


def _device_concurrency(factors: list[float] | str, workers: int) -> float:
    """Calls' worth of compute a device does at once at best: max over k ≤ workers of k / f(k)."""
    if factors == "processor_sharing":
        return 1.0
    return max(k / factors[min(k, len(factors)) - 1] for k in range(1, workers + 1))


STATIONARY_PROCESSES = {"poisson", "deterministic", "mmpp"}


def run_notes(plan: RunPlan) -> tuple[list[str], bool]:
    """What a reader of the results must know about how the scenario's input shapes them, and
    whether a single replication may give batch-means intervals (only a stationary run may)."""
    scenario = plan.scenario
    notes = calibration_notes(scenario)
    expected_s = horizon_s(plan)
    for index, event in enumerate(scenario.events):
        start_field = _start_field(event)
        if start_field is not None and getattr(event, start_field) > expected_s:
            notes.append(
                f"events[{index}] starts at {getattr(event, start_field):g} s, after the run's expected end "
                f"(about {expected_s:.3g} s): it may not happen at all"
            )
    processes = [scenario.workload.arrival] if scenario.workload.arrival is not None else []
    processes += [c.arrival for c in scenario.workload.classes if c.arrival is not None]
    kinds = {process.process for process in processes}
    if "trace" in kinds:
        notes.append("arrivals replay a trace: every replication sees the same arrivals, so intervals are conditional on the trace")
    if kinds & {"diurnal", "piecewise"}:
        notes.append(
            "time-varying arrivals: the results average over the part of the load cycle the run covers; "
            "cover whole cycles (or look at the time series per phase)"
        )
    stationary = kinds <= STATIONARY_PROCESSES and not scenario.events
    return notes, stationary


MAX_WINDOWS = 1_000_000  # monitoring windows per replication
MAX_SWITCHES_PER_ARRIVAL = 1_000  # Markov-modulated state changes per arrival
MAX_PEAK_TO_MEAN = 10_000  # candidates drawn per arrival when thinning a time-varying rate
MAX_FAILURES = 100_000  # expected node failures per replication
HORIZON_LIMIT = 100  # an event starting over this many times the run's expected end is refused (a note beyond 1 ×)


def check_bounded_work(plan: RunPlan) -> None:
    """Refuse inputs whose cost in time is unbounded or absurd, before anything runs: monitoring
    windows, state switches and thinning per arrival, failures per run, events after the run's
    end, events naming unknown nodes, and traces shorter than the warm-up."""
    scenario = plan.scenario
    source = scenario.source
    for field, config in _arrival_configs(scenario):
        process = built_policy(scenario, field, ARRIVAL_PROCESSES, config, stream(plan.seed, 0, "arrivals"))
        limit = process.max_arrivals()
        if limit is not None and limit <= plan.warmup_requests:
            raise ScenarioError(
                f"{source}: {field} (arrival.trace {config.file}): the trace holds {limit:,} arrivals, no more than the warm-up "
                f"(run.warmup_requests = {plan.warmup_requests:,}): nothing would be measured; lower the warm-up"
            )
        ratio = process.peak_rate_per_s() / process.mean_rate_per_s()
        if ratio > MAX_PEAK_TO_MEAN:
            raise ScenarioError(
                f"{source}: {field}: the peak rate is {ratio:.3g} times the mean rate; at most {MAX_PEAK_TO_MEAN:,} "
                "(every arrival would cost that many candidate draws)"
            )
        if config.process == "mmpp":
            switches_per_s = len(config.states) / sum(state.mean_duration_s for state in config.states)
            if switches_per_s / process.mean_rate_per_s() > MAX_SWITCHES_PER_ARRIVAL:
                raise ScenarioError(
                    f"{source}: {field}.states: the process changes state {switches_per_s:.3g} times per second, over "
                    f"{MAX_SWITCHES_PER_ARRIVAL:,} times per arrival; lengthen mean_duration_s"
                )
    expected_s = horizon_s(plan)
    windows = expected_s / scenario.run.monitoring_window_s
    if windows > MAX_WINDOWS:
        raise ScenarioError(
            f"{source}: run.monitoring_window_s: {scenario.run.monitoring_window_s:g} s windows over a run of about "
            f"{expected_s:.3g} s make {windows:.3g} windows; at most {MAX_WINDOWS:,} (use longer windows)"
        )
    _check_events(scenario, expected_s)
    _check_delays(scenario, expected_s)


def _check_delays(scenario: Scenario, horizon_s: float) -> None:
    """No delay outside the workers (a network leg, a pipeline hop, a cache hit) has a mean far beyond the run's
    expected length: arrivals go on until every measured request is back, so a delay of days would make a run of
    seconds simulate days of arrivals."""
    delays: list[tuple[str, object]] = []
    if scenario.network is not None and scenario.network.delay is not None:
        delays.append(("network.delay", scenario.network.delay))
    elif scenario.network is not None:
        delays += [(f"network.{leg}", config) for leg, config in scenario.network.legs().items() if config is not None]
    if scenario.pipeline is not None:
        delays.append(("pipeline.transfer", scenario.pipeline.transfer))
    if scenario.cache is not None:
        delays.append(("cache.hit_latency", scenario.cache.hit_latency))
    for field, config in delays:
        mean_s = build_service_model(config, scenario.base_dir).mean_ms(1) / 1000
        if mean_s > HORIZON_LIMIT * horizon_s:
            raise ScenarioError(
                f"{scenario.source}: {field}: a mean delay of {mean_s:.3g} s is over {HORIZON_LIMIT} times the run's "
                f"expected length ({horizon_s:.3g} s of arrivals), and arrivals go on until every measured request is back: "
                "the run would simulate that long; use a delay in ms, or raise run.requests"
            )


def _start_field(event: object) -> str | None:
    return "start_s" if hasattr(event, "start_s") else "at_s" if hasattr(event, "at_s") else None


def horizon_s(plan: RunPlan) -> float:
    """The run's expected length in simulated seconds: its arrivals over their mean rate."""
    return (plan.warmup_requests + plan.requests) / sum(class_rates_per_s(plan.scenario, plan.seed))


def _arrival_configs(scenario: Scenario) -> list[tuple[str, object]]:
    configs = [("workload.arrival", scenario.workload.arrival)] if scenario.workload.arrival is not None else []
    return configs + [
        (f"workload.classes[{k}].arrival", c.arrival) for k, c in enumerate(scenario.workload.classes) if c.arrival is not None
    ]


def _check_events(scenario: Scenario, horizon_s: float) -> None:
    """Events name nodes that exist, start before the run is expected to end, and fail nodes a bounded number of times."""
    known = set(scenario.node_names()) | {spec.name for spec in scenario.nodes}
    for index, event in enumerate(scenario.events):
        field = f"{scenario.source}: events[{index}]"
        names = getattr(event, "nodes", [])
        unknown = [name for name in names if name not in known]
        if unknown:
            raise ScenarioError(
                f"{field}.nodes: no node or node spec named {', '.join(map(repr, unknown))}; known: {', '.join(sorted(known))}"
            )
        start_field = _start_field(event)
        if start_field is not None and getattr(event, start_field) > HORIZON_LIMIT * horizon_s:
            raise ScenarioError(
                f"{field}.{start_field}: {getattr(event, start_field):g} s is far after the run's expected end (about "
                f"{horizon_s:.3g} s of arrivals): it would never happen; move it or raise run.requests"
            )
        if event.type == "random_failures":
            targets = sum(1 for name in scenario.node_names() if name in names or name.split("-")[0] in names)
            expected = horizon_s / event.mtbf_s * max(targets, len(names))
            if expected > MAX_FAILURES:
                raise ScenarioError(
                    f"{field}.mtbf_s: about {expected:.3g} failures in a run of {horizon_s:.3g} s; at most {MAX_FAILURES:,}"
                )
