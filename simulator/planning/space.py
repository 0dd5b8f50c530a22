"""The search space of a plan: its configurations, what each costs, and the scenario each one is.

A configuration picks one option per dimension of ``plan.space`` (hardware, variant, workers,
batching, cache size, discipline, router) and a replica count. The replica count is the monotone
dimension (more replicas of a node never lower its capacity), so the search walks it as a ladder
within each *group* (the other choices). Options are kept as canonical JSON, so a configuration is
hashable, printable and stored as it is.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from simulator.errors import ProfileBundleError, ScenarioError
from simulator.formats.profile_bundle import ProfileBundle, file_sha256, load_bundle
from simulator.scenario.plan import HardwareOption, PlanSpec
from simulator.scenario.schema import Scenario

DIMENSIONS = ("hardware", "variant", "workers", "batching", "cache_capacity_entries", "discipline", "router")


def canonical(value: Any) -> str:
    """A value as canonical JSON (sorted keys, no spaces): equal values, equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True, order=True)
class Configuration:
    """One point of the space: the group's choices (dimension, canonical JSON) and a replica count."""

    choices: tuple[tuple[str, str], ...]
    replicas: int

    def with_replicas(self, replicas: int) -> Configuration:
        return Configuration(self.choices, replicas)

    def with_choice(self, dimension: str, value: Any) -> Configuration:
        return Configuration(tuple((name, canonical(value) if name == dimension else text) for name, text in self.choices), self.replicas)

    @cached_property
    def params(self) -> dict[str, Any]:
        """The choices as plain values, and ``replicas``."""
        return {**{name: json.loads(text) for name, text in self.choices}, "replicas": self.replicas}

    @cached_property
    def id(self) -> str:
        """A stable short name of the configuration (its parameters' hash), for tables and the results file."""
        import hashlib

        return "c" + hashlib.blake2b(canonical(self.params).encode(), digest_size=4).hexdigest()

    def label(self) -> str:
        """The configuration in words: ``cpu-2c · int8 · 2 workers · batch ≤ 8 (2 ms) · 3 replicas``."""
        words = [_describe(name, json.loads(text)) for name, text in self.choices]
        return " · ".join([*words, f"{self.replicas} replica{'s' if self.replicas != 1 else ''}"])


def _describe(dimension: str, value: Any) -> str:
    if dimension in ("hardware", "variant"):
        return str(value)
    if dimension == "workers":
        return f"{value} worker{'s' if value != 1 else ''}"
    if dimension == "batching":
        if value is None:
            return "no batching"
        if value.get("policy") == "triton":
            return f"batch ≤ {value['max_batch_size']} ({value['max_queue_delay_ms']:g} ms)"
        return f"batching {value.get('policy')}"
    if dimension == "cache_capacity_entries":
        return "no cache" if value is None else f"cache {value:,}"
    return f"{dimension} {value.get('policy', value) if isinstance(value, dict) else value}"


@dataclass(frozen=True)
class BundleInfo:
    """What a report needs to name a hardware option's profile bundle exactly."""

    bundle: ProfileBundle
    path: str
    sha256: str

    def describe(self) -> dict[str, Any]:
        meta = self.bundle.metadata
        return {
            "path": self.path, "hardware_id": self.bundle.hardware_id, "samples_sha256": self.sha256,
            "created_utc": meta["created_utc"], "cpu_model": meta["hardware"]["cpu_model"],
            "gpu": (meta["hardware"].get("gpu") or {}).get("name"), "torch": meta["hardware"]["torch"],
        }


class Space:
    """The plan's configurations over a base scenario (the scenario with the load curve applied, without its plan)."""

    def __init__(self, scenario: Scenario, spec: PlanSpec) -> None:
        self.scenario = scenario
        self.spec = spec
        space = spec.space
        self.node_index = scenario.node_spec_index(space.node, "plan.space.node")
        node = scenario.nodes[self.node_index]
        self.replicas = sorted(space.replicas or [node.replicas])
        self.hardware = {option.name: option for option in space.hardware or []}
        if len(self.hardware) != len(space.hardware or []):
            raise ScenarioError(f"{scenario.source}: plan.space.hardware: names must be unique")
        self.bundles = {name: self._bundle(index, option) for index, (name, option) in enumerate(self.hardware.items())}
        self.family, default_variant = self._family_and_variant()
        options: dict[str, list[Any]] = {
            "hardware": list(self.hardware) if space.hardware else None,
            "variant": (space.variants.names if space.variants else [default_variant]) if space.hardware else None,
            "workers": space.workers,
            "batching": [None if b is None else b.model_dump(mode="json") for b in space.batching] if space.batching else None,
            "cache_capacity_entries": space.cache_capacity_entries,
            "discipline": [d.model_dump(mode="json") for d in space.disciplines] if space.disciplines else None,
            "router": [r.model_dump(mode="json") for r in space.routers] if space.routers else None,
        }
        self.options = {name: [canonical(value) for value in values] for name, values in options.items() if values is not None}
        if "cache_capacity_entries" in self.options and scenario.cache is None:
            raise ScenarioError(
                f"{scenario.source}: plan.space.cache_capacity_entries: the scenario has no cache section to size; add one"
            )

    def _bundle(self, index: int, option: HardwareOption) -> BundleInfo:
        path = self.scenario.path(option.bundle)
        try:
            bundle = load_bundle(path)
        except ProfileBundleError as error:
            raise ScenarioError(f"{self.scenario.source}: plan.space.hardware[{index}].bundle: {error}") from None
        if bundle.metadata["hardware"].get("device", option.device) != option.device:
            raise ScenarioError(
                f"{self.scenario.source}: plan.space.hardware[{index}].device: {option.device!r}, but the bundle was "
                f"measured on {bundle.metadata['hardware']['device']!r}"
            )
        return BundleInfo(bundle, option.bundle, file_sha256(bundle.path / bundle.metadata["samples"]["file"]))

    def _family_and_variant(self) -> tuple[str | None, str | None]:
        """The model family the variants belong to, and the variant used when the space lists none."""
        if not self.hardware:
            return None, None
        own = [c.name for c in self.scenario.workload.classes if c.service is not None]
        if own:
            raise ScenarioError(
                f"{self.scenario.source}: plan.space.hardware: classes {own} have their own service model, which the "
                "plan's hardware and variants would not change; leave it to the node"
            )
        if self.spec.space.variants is not None:
            return self.spec.space.variants.family, None
        service = self.scenario.nodes[self.node_index].service
        if service.distribution != "profile":
            raise ScenarioError(
                f"{self.scenario.source}: plan.space.variants: the node's service is not a profile, so give the model "
                "family and variants to run on the hardware options"
            )
        return service.family, service.variant

    # -- the configurations -------------------------------------------------------------------

    def groups(self) -> list[tuple[tuple[str, str], ...]]:
        """Every combination of the non-replica options, in the order the space lists them."""
        names = [name for name in DIMENSIONS if name in self.options]
        return [tuple(zip(names, values)) for values in itertools.product(*(self.options[name] for name in names))]

    def configurations(self) -> list[Configuration]:
        return [Configuration(group, replicas) for group in self.groups() for replicas in self.replicas]

    @property
    def size(self) -> int:
        return len(self.groups()) * len(self.replicas)

    def dimensions(self) -> dict[str, list[Any]]:
        """The options of every dimension, as plain values (for the report)."""
        return {**{name: [json.loads(text) for text in texts] for name, texts in self.options.items()}, "replicas": self.replicas}

    # -- what a configuration costs and is ----------------------------------------------------

    def cost_per_hour(self, config: Configuration) -> float:
        """Replicas (in every partition) times the cost of one replica per hour: its own, plus its workers' cost each."""
        hardware = config.params.get("hardware")
        if hardware is not None:
            replica, worker = self.hardware[hardware].cost_per_hour, self.hardware[hardware].cost_per_worker_per_hour
        else:
            replica, worker = self.spec.cost_per_hour or 0.0, self.spec.cost_per_worker_per_hour or 0.0
        workers = config.params.get("workers", self.scenario.nodes[self.node_index].workers)
        return config.replicas * self.scenario.partitioning.partitions * float(replica + workers * worker)

    def quality(self, config: Configuration) -> dict[str, float] | None:
        """The variant's measured quality on that hardware (accuracy, agreement with fp32), or None if not profiled."""
        hardware = config.params.get("hardware")
        if hardware is None:
            return None
        info = self.bundles[hardware].bundle.model_info(self.family, config.params["variant"], self.hardware[hardware].device)
        if info is None:
            return None
        quality = info.get("quality") or {}
        # an untrained model (a production-size zoo family) has no accuracy: None is not measured
        return {key: float(quality[key]) for key in ("accuracy", "agreement_with_fp32") if quality.get(key) is not None}

    def exclusion(self, config: Configuration) -> str | None:
        """Why the configuration is not a candidate by definition (a variant not profiled, or below the quality floor)."""
        hardware = config.params.get("hardware")
        if hardware is None:
            return None
        variant = config.params["variant"]
        quality = self.quality(config)
        if quality is None:
            return f"not profiled: {self.family}/{variant} is not in the bundle of {hardware}"
        floors = self.spec.space.variants
        if floors is None:
            return None
        for key, floor in (("accuracy", floors.min_accuracy), ("agreement_with_fp32", floors.min_agreement)):
            if floor is not None and quality.get(key, 0.0) < floor:
                return f"quality floor: {variant} has {key} {quality.get(key, float('nan')):.3f} < {floor:g}"
        return None

    def apply(self, scenario: Scenario, config: Configuration) -> Scenario:
        """``scenario`` (the base, or the base at some load) set to the configuration: a validated copy."""
        params = config.params
        node = f"nodes[{self.node_index}]"
        result = scenario.replace(f"{node}.replicas", config.replicas)
        if "workers" in params:
            result = result.replace(f"{node}.workers", params["workers"])
        if "hardware" in params:
            option = self.hardware[params["hardware"]]
            result = result.replace(f"{node}.service", self._profile(option, params["variant"], "compute" if option.staged else "end_to_end"))
            result = result.replace(f"{node}.device", self._device(option, params["variant"], scenario) if option.staged else None)
            result = result.replace(f"{node}.calibration", {"file": option.calibration} if option.calibration else None)
        if "batching" in params:
            result = result.replace(f"{node}.batching", params["batching"])
        if "cache_capacity_entries" in params:
            size = params["cache_capacity_entries"]
            result = result.replace("cache", None) if size is None else result.replace("cache.policy.capacity_entries", size)
        if "discipline" in params:
            result = result.replace(f"{node}.discipline", params["discipline"])
        if "router" in params:
            result = result.replace("router", params["router"])
        return result

    def _profile(self, option: HardwareOption, variant: str, stage: str) -> dict[str, Any]:
        service = {"distribution": "profile", "bundle": option.bundle, "family": self.family, "variant": variant, "device": option.device, "stage": stage}
        return service | ({"threads": option.threads} if option.threads is not None else {})

    def _device(self, option: HardwareOption, variant: str, scenario: Scenario) -> dict[str, Any]:
        """Measured H2D and D2H copies around the compute, and the measured slowdown of concurrent calls."""
        base = scenario.nodes[self.node_index].device
        slowdown = {"bundle": option.bundle, "family": self.family, "variant": variant, "device": option.device}
        return {
            "h2d": self._profile(option, variant, "h2d"),
            "d2h": self._profile(option, variant, "d2h"),
            "copy_engines": base.copy_engines if base is not None else 1,
            "concurrency_slowdown": slowdown | ({"threads": option.threads} if option.threads is not None else {}),
        }


def without_calibration(scenario: Scenario) -> Scenario | None:
    """The plan's scenario with every calibration left out (its raw profiles), or None if nothing in it is calibrated."""
    result = scenario
    for index, spec in enumerate(scenario.nodes):
        if spec.calibration is not None:
            result = result.replace(f"nodes[{index}].calibration", None)
    hardware = scenario.plan.space.hardware if scenario.plan is not None else None
    for index, option in enumerate(hardware or []):
        if option.calibration is not None:
            result = result.replace(f"plan.space.hardware[{index}].calibration", None)
    return None if result is scenario else result
