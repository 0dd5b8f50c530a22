"""Assemble one replication's model from a scenario: nodes, routers, partitions, network, cache."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from pydantic import BaseModel

from simulator.model.cache_tier import CacheTier
from simulator.model.cluster import Cluster
from simulator.model.device import StagedExecutor
from simulator.model.machine import CallTime, OccupancyCurve, Overhead, Speed
from simulator.model.model_memory import ModelMemory
from simulator.model.node import Node
from simulator.model.pipeline import Pipeline
from simulator.model.request import Request
from simulator.model.service_draws import NodeServiceDraws, RequirementDraws, SizedDraws
from simulator.model.simulation import Environment
from simulator.random_streams import draws, stream
from simulator.registry import (
    ADMISSION_POLICIES,
    BATCHERS,
    DISCIPLINES,
    FAILURE_HANDLING,
    PARTITIONERS,
    ROUTERS,
)
from simulator.scenario.nodes import NodeSpec
from simulator.scenario.schema import Scenario
from simulator.scenario.service import ServiceConfig
from simulator.service.base import ServiceTimeModel, build_service_model
from simulator.service.slowdown import slowdown_factors

ModelBuilder = Callable[[BaseModel], ServiceTimeModel]


def model_builder(scenario: Scenario) -> ModelBuilder:
    """Builds each service-model config of the scenario once, however many nodes share it."""
    built: dict[int, ServiceTimeModel] = {}

    def model(config: BaseModel) -> ServiceTimeModel:
        if id(config) not in built:
            built[id(config)] = build_service_model(config, scenario.base_dir)
        return built[id(config)]

    return model


def service_models(scenario: Scenario, model: ModelBuilder | None = None) -> list[list[ServiceTimeModel]]:
    """``models[node_spec][class]``: a class's own service model, else its node's."""
    model = model or model_builder(scenario)
    return [[model(c.service or spec.service) for c in scenario.workload.classes] for spec in scenario.nodes]


def requirement_draws(scenario: Scenario, models: Sequence[Sequence[ServiceTimeModel]], seed: int, replication: int) -> RequirementDraws:
    """The draws of every request's service time at each node spec, made when it arrives (common random numbers)."""
    return RequirementDraws(
        models, [spec.name for spec in scenario.nodes], [c.name for c in scenario.workload.classes], seed, replication
    )


def model_groups(scenario: Scenario, spec: NodeSpec) -> list[int]:
    """Class index → batching group at a node of ``spec``: classes of one model (same model name and
    service settings) share a group, and a batch holds one group only; without batching, one group."""
    if spec.batching is None or spec.batching.max_batch_size == 1:
        return [0] * len(scenario.workload.classes)
    keys: dict[tuple, int] = {}
    return [
        keys.setdefault((c.model, (c.service or spec.service).model_dump_json()), len(keys)) for c in scenario.workload.classes
    ]


def _executor(
    env: Environment,
    scenario: Scenario,
    spec: NodeSpec,
    name: str,
    seed: int,
    replication: int,
    model: ModelBuilder,
    slowdown: Sequence[float],
) -> StagedExecutor | None:
    """Device stages and model memory of one node, when its spec has them."""
    if spec.device is None and spec.model_cache is None:
        return None

    def sized(config: BaseModel, purpose: str) -> SizedDraws:
        return SizedDraws(model(config), purpose, seed, replication)

    memory = None
    load_draws = {}
    if spec.model_cache is not None:
        memory = ModelMemory(spec.model_cache.memory_mb, {m: model.size_mb for m, model in scenario.models.items()})
        load_draws = {m: sized(model.load, f"load/{name}/{m}") for m, model in scenario.models.items()}
    device = spec.device
    return StagedExecutor(
        env=env,
        device=device,
        h2d_ms=sized(device.h2d, f"h2d/{name}") if device and device.h2d else None,
        d2h_ms=sized(device.d2h, f"d2h/{name}") if device and device.d2h else None,
        memory=memory,
        class_models=[c.model for c in scenario.workload.classes],
        load_ms=lambda model_name: load_draws[model_name](),
        slowdown_factors=slowdown,
    )


def _network_delays(scenario: Scenario, seed: int, replication: int) -> dict[str, Iterator[float] | None]:
    """Delay draws per network leg (``request``, ``response``): one stream both ways for ``delay``."""
    network = scenario.network
    if network is None:
        return {"request": None, "response": None}

    def delays(config: ServiceConfig, purpose: str) -> Iterator[float]:
        model, rng = build_service_model(config, scenario.base_dir), stream(seed, replication, purpose)
        return draws(lambda size: model.draw_block(rng, size))

    if network.delay is not None:
        both = delays(network.delay, "network")
        return {"request": both, "response": both}
    return {leg: None if config is None else delays(config, f"network/{leg}") for leg, config in network.legs().items()}


def _call_time(spec: NodeSpec, node_name: str, seed: int, replication: int) -> CallTime | None:
    """The machine's speed process, occupancy slowdown and overhead on the node's calls (None when the spec sets none)."""
    if spec.speed is None and spec.overhead is None and spec.occupancy_slowdown is None:
        return None
    speed = None if spec.speed is None else Speed(spec.speed, stream(seed, replication, f"speed/{node_name}"))
    overhead = None if spec.overhead is None else Overhead(spec.overhead, stream(seed, replication, f"overhead/{node_name}"))
    curve = spec.occupancy_slowdown
    slowdown = None if curve is None else OccupancyCurve(curve.occupancy, curve.factors)
    return CallTime(speed, overhead, slowdown)


def build_cluster(
    env: Environment,
    scenario: Scenario,
    models: Sequence[Sequence[ServiceTimeModel]],
    seed: int,
    replication: int,
    finished: list[Request],
    catalog_size: int | None,
) -> Cluster:
    """Every node of every partition, a router per partition, and the network between them."""
    classes = scenario.workload.classes
    class_names = [c.name for c in classes]
    firm = [c.kind == "firm" for c in classes]
    partitions = scenario.partitioning.partitions
    network_delays = _network_delays(scenario, seed, replication)
    model = model_builder(scenario)
    slowdowns = {spec.name: slowdown_factors(spec.device, scenario.base_dir) for spec in scenario.nodes if spec.device}
    batch_draws = {}  # per spec: one SizedDraws per model group, shared by the spec's replicas
    for spec, spec_models in zip(scenario.nodes, models):
        groups = model_groups(scenario, spec)
        by_group = {}
        for class_index, group in enumerate(groups):
            if group not in by_group:
                by_group[group] = SizedDraws(spec_models[class_index], f"batch/{spec.name}/group-{group}", seed, replication)
        batch_draws[spec.name] = [by_group[group] for group in groups]
    names = scenario.node_names()
    partition_nodes: list[list[Node]] = []
    index = 0
    for partition in range(partitions):
        members = []
        for spec_index, (spec, spec_models) in enumerate(zip(scenario.nodes, models)):
            means_ms = [service_model.mean_ms() for service_model in spec_models]
            groups = model_groups(scenario, spec)
            for replica in range(spec.replicas):
                name = names[index]
                members.append(
                    Node(
                        env=env,
                        index=index,
                        name=name,
                        spec_name=spec.name,
                        spec_index=spec_index,
                        workers=spec.workers,
                        queues=[DISCIPLINES.build(spec.discipline) for _ in range(max(groups) + 1)],
                        model_group=groups,
                        queue_capacity=spec.queue_capacity,
                        admission=ADMISSION_POLICIES.build(spec.admission, firm, means_ms),
                        service=NodeServiceDraws(spec_models, class_names, name, batch_draws[spec.name], seed, replication),
                        mean_service_ms=means_ms,
                        max_queue_length=scenario.run.max_queue_length,
                        queue_policy=spec.queue_policy,
                        batcher=BATCHERS.build(spec.batching) if spec.batching is not None else None,
                        executor=_executor(
                            env, scenario, spec, name, seed, replication, model, slowdowns.get(spec.name, (1.0,))
                        ),
                        call_time=_call_time(spec, name, seed, replication),
                    )
                )
                index += 1
        partition_nodes.append(members)
    pipeline = _pipeline(scenario, seed, replication)
    routers = []  # one per partition, or per partition and stage (index partition × stages + stage)
    for partition, members in enumerate(partition_nodes):
        purpose = "router" if partitions == 1 else f"router/p{partition}"
        groups = [members] if pipeline is None else [
            [node for node in members if node.spec_name == stage] for stage in scenario.pipeline.stages
        ]
        for stage, group in enumerate(groups):
            rng = stream(seed, replication, purpose if pipeline is None else f"{purpose}/s{stage}")
            routers.append(ROUTERS.build(scenario.router, group, rng))
    return Cluster(
        env=env,
        partitions=partition_nodes,
        routers=routers,
        partitioner=PARTITIONERS.build(scenario.partitioning, catalog_size) if partitions > 1 else None,
        request_delay_ms=network_delays["request"],
        response_delay_ms=network_delays["response"],
        finished=finished,
        orphan_policy=FAILURE_HANDLING.build(scenario.failure_handling),
        cache=_cache_tier(env, scenario, index, seed, replication),
        pipeline=pipeline,
    )


def _pipeline(scenario: Scenario, seed: int, replication: int) -> Pipeline | None:
    spec = scenario.pipeline
    if spec is None:
        return None
    transfer_model = build_service_model(spec.transfer, scenario.base_dir)
    transfer_rng = stream(seed, replication, "pipeline transfers")
    return Pipeline(spec, draws(lambda size: transfer_model.draw_block(transfer_rng, size)))


def _cache_tier(env: Environment, scenario: Scenario, node_count: int, seed: int, replication: int) -> CacheTier | None:
    spec = scenario.cache
    if spec is None:
        return None
    hit_model = build_service_model(spec.hit_latency, scenario.base_dir)
    hit_rng = stream(seed, replication, "cache hits")
    return CacheTier(env, spec, node_count, draws(lambda size: hit_model.draw_block(hit_rng, size)))
