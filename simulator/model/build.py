"""Assemble one replication's model from a scenario: nodes, routers, partitions, network."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import simpy
from pydantic import BaseModel

from simulator.model.admission import ADMISSION_POLICIES
from simulator.model.cache_tier import CacheTier
from simulator.model.cluster import Cluster
from simulator.model.disciplines import DISCIPLINES
from simulator.model.execution import ModelMemory, StagedExecutor
from simulator.model.node import Node
from simulator.model.partitioning import Partitioner
from simulator.model.pipeline import Pipeline
from simulator.model.request import Request
from simulator.model.router import ROUTERS
from simulator.model.service_draws import ServiceDraws, SizedDraws
from simulator.random_streams import draws, stream
from simulator.scenario.loader import LoadedScenario
from simulator.scenario.schema import NodeSpec, Scenario
from simulator.service.base import ServiceTimeModel, build_service_model


ModelBuilder = Callable[[BaseModel], ServiceTimeModel]


def model_builder(loaded: LoadedScenario) -> ModelBuilder:
    """Builds each service-model config of the scenario once, however many nodes share it."""
    built: dict[int, ServiceTimeModel] = {}

    def model(config: BaseModel) -> ServiceTimeModel:
        if id(config) not in built:
            built[id(config)] = build_service_model(config, loaded.base_dir)
        return built[id(config)]

    return model


def service_models(loaded: LoadedScenario, model: ModelBuilder | None = None) -> list[list[ServiceTimeModel]]:
    """``models[node_spec][class]``: a class's own service model, else its node's."""
    scenario = loaded.scenario
    model = model or model_builder(loaded)
    return [[model(c.service or spec.service) for c in scenario.workload.classes] for spec in scenario.nodes]


def node_name(spec_name: str, replicas: int, replica: int, partitions: int, partition: int) -> str:
    name = spec_name if partitions == 1 else f"{spec_name}-p{partition}"
    return name if replicas == 1 else f"{name}-{replica}"


def node_names(scenario: Scenario) -> list[str]:
    """Every node's name, in node-index order: partition, then node spec, then replica."""
    partitions = scenario.partitioning.partitions
    return [
        node_name(spec.name, spec.replicas, replica, partitions, partition)
        for partition in range(partitions)
        for spec in scenario.nodes
        for replica in range(spec.replicas)
    ]


def node_workers(scenario: Scenario) -> list[int]:
    """Every node's worker count, in node-index order."""
    return [spec.workers for _ in range(scenario.partitioning.partitions) for spec in scenario.nodes for _ in range(spec.replicas)]


def _executor(
    env: simpy.Environment,
    loaded: LoadedScenario,
    spec: NodeSpec,
    name: str,
    seed: int,
    replication: int,
    model: ModelBuilder,
    slowdown_factors: Sequence[float],
) -> StagedExecutor | None:
    """Device stages and model memory of one node, when its spec has them."""
    if spec.device is None and spec.model_cache is None:
        return None
    scenario = loaded.scenario

    def sized(config, purpose: str) -> SizedDraws:
        return SizedDraws(model(config), purpose, seed, replication)

    h2d = sized(spec.device.h2d, f"h2d/{name}") if spec.device else None
    d2h = sized(spec.device.d2h, f"d2h/{name}") if spec.device else None
    memory = None
    load_draws = {}
    if spec.model_cache is not None:
        memory = ModelMemory(spec.model_cache.memory_mb, {m: model.size_mb for m, model in scenario.models.items()})
        load_draws = {m: sized(model.load, f"load/{name}/{m}") for m, model in scenario.models.items()}
    return StagedExecutor(
        env, spec.device, h2d, d2h, memory, [c.model for c in scenario.workload.classes],
        lambda model_name: load_draws[model_name](),
        slowdown_factors,
    )


def build_cluster(
    env: simpy.Environment,
    loaded: LoadedScenario,
    models: Sequence[Sequence[ServiceTimeModel]],
    seed: int,
    replication: int,
    finished: list[Request],
    catalog_size: int | None,
) -> Cluster:
    """Every node of every partition, a router per partition, and the network between them."""
    scenario = loaded.scenario
    classes = scenario.workload.classes
    class_names = [c.name for c in classes]
    firm = [c.kind == "firm" for c in classes]
    partitions = scenario.partitioning.partitions
    network = scenario.network
    network_delay_ms = None
    if network is not None:
        delay_model = build_service_model(network.delay, loaded.base_dir)
        network_rng = stream(seed, replication, "network")
        network_delay_ms = draws(lambda size: delay_model.draw_block(network_rng, size))
    model = model_builder(loaded)
    slowdowns = {spec.name: spec.device.slowdown_factors(loaded.base_dir) for spec in scenario.nodes if spec.device}
    partition_nodes: list[list[Node]] = []
    index = 0
    for partition in range(partitions):
        members = []
        for spec, spec_models in zip(scenario.nodes, models):
            means_ms = [service_model.mean_ms() for service_model in spec_models]
            for replica in range(spec.replicas):
                name = node_name(spec.name, spec.replicas, replica, partitions, partition)
                service = ServiceDraws(spec_models, class_names, name, seed, replication)
                executor = _executor(
                    env, loaded, spec, name, seed, replication, model, slowdowns.get(spec.name, (1.0,))
                )
                members.append(
                    Node(
                        env, index, name, spec.name, spec.workers,
                        DISCIPLINES.policy_class(spec.discipline)(),
                        spec.queue_capacity,
                        ADMISSION_POLICIES.policy_class(spec.admission)(spec.admission, firm, means_ms),
                        service.single, service, means_ms, scenario.run.max_queue_length, spec.batching, executor,
                    )
                )
                index += 1
        partition_nodes.append(members)
    pipeline = _pipeline(loaded, seed, replication)
    routers = []  # one per partition, or per partition and stage (index partition × stages + stage)
    for partition, members in enumerate(partition_nodes):
        purpose = "router" if partitions == 1 else f"router/p{partition}"
        groups = [members] if pipeline is None else [
            [node for node in members if node.spec_name == stage] for stage in scenario.pipeline.stages
        ]
        for stage, group in enumerate(groups):
            rng = stream(seed, replication, purpose if pipeline is None else f"{purpose}/s{stage}")
            routers.append(ROUTERS.policy_class(scenario.router)(scenario.router, group, rng))
    handling = scenario.failure_handling
    return Cluster(
        env, partition_nodes, routers, Partitioner(scenario.partitioning, catalog_size) if partitions > 1 else None,
        network_delay_ms, finished, handling.in_flight == "retry", handling.max_retries,
        _cache_tier(env, loaded, index, seed, replication), pipeline,
    )


def _pipeline(loaded: LoadedScenario, seed: int, replication: int) -> Pipeline | None:
    spec = loaded.scenario.pipeline
    if spec is None:
        return None
    transfer_model = build_service_model(spec.transfer, loaded.base_dir)
    transfer_rng = stream(seed, replication, "pipeline transfers")
    return Pipeline(spec, draws(lambda size: transfer_model.draw_block(transfer_rng, size)))


def _cache_tier(env: simpy.Environment, loaded: LoadedScenario, node_count: int, seed: int, replication: int) -> CacheTier | None:
    spec = loaded.scenario.cache
    if spec is None:
        return None
    hit_model = build_service_model(spec.hit_latency, loaded.base_dir)
    hit_rng = stream(seed, replication, "cache hits")
    return CacheTier(env, spec, node_count, draws(lambda size: hit_model.draw_block(hit_rng, size)))
