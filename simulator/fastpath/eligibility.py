"""Which scenarios the fast engine simulates exactly like the SimPy model, and what rules the others out.

The fast engine covers c-server nodes behind a router per partition (by hash or key range), with
a network between them or not: FIFO, non-preemptive priority and EDF queues, bounded or not,
admission control (none, expired, predictive), a machine under each node (speed process,
occupancy slowdown, per-call overhead), a device's compute shared among its calls
(``concurrency_slowdown``), any arrival process (per class too), request keys, and service times
drawn at arrival (parametric, empirical or from a profile). Everything else — a result cache,
pipeline stages, events, batching, device copy stages, a model cache, queue policies,
preemption, routers beyond round robin, random, join-shortest-queue, power of two choices and
least work, service processes drawn in service order — is the SimPy model's alone. This module imports no numba: deciding costs nothing.
"""

from __future__ import annotations

from simulator.model.build import service_models
from simulator.registry import BATCHERS
from simulator.scenario.schema import Scenario

DISCIPLINES = {"fifo", "priority", "edf"}
ADMISSION_POLICIES = {"none", "expired", "predictive"}
ROUTERS = {"round_robin", "random", "jsq", "power_of_two", "least_work"}


def ineligibility(scenario: Scenario) -> str | None:
    """The first feature of ``scenario`` the fast engine cannot simulate (with its field), or None."""
    whole = {"cache": "a result cache", "pipeline": "pipeline stages"}
    for field, feature in whole.items():
        if getattr(scenario, field) is not None:
            return f"{feature} ({field})"
    if scenario.events:
        return f"events (events[0] is a {scenario.events[0].type})"
    if sum(spec.replicas for spec in scenario.nodes) > 1 and scenario.router.policy not in ROUTERS:
        return f"the {scenario.router.policy} router (router.policy)"
    for index, spec in enumerate(scenario.nodes):
        field = f"nodes[{index}]"
        if spec.batching is not None and not BATCHERS.build(spec.batching).is_trivial:
            return f"dynamic batching ({field}.batching)"
        for part, feature in (("model_cache", "a model cache"), ("queue_policy", "a queue policy")):
            if getattr(spec, part) is not None:
                return f"{feature} ({field}.{part})"
        for copy in ("h2d", "d2h"):
            if spec.device is not None and getattr(spec.device, copy) is not None:
                return f"device copy stages ({field}.device.{copy})"
        if spec.discipline.policy not in DISCIPLINES:
            return f"the {spec.discipline.policy} discipline ({field}.discipline)"
        if spec.admission.policy not in ADMISSION_POLICIES:
            return f"the {spec.admission.policy} admission policy ({field}.admission)"
    for spec, models in zip(scenario.nodes, service_models(scenario)):
        for request_class, model in zip(scenario.workload.classes, models):
            if model.ordered:
                where = "the service" if request_class.service is None else f"class {request_class.name!r}'s service"
                return f"a service-time process drawn in service order ({where} at node {spec.name!r})"
    return None
