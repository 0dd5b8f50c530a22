"""Policies registered from outside the package, after import, are first-class: validated, run, in the schema."""

from __future__ import annotations

import json
import re
from typing import Literal

import numpy as np
import pytest
from pydantic import PositiveFloat
from typer.testing import CliRunner

import simulator.registry as registry
from simulator import PolicyConfig, ScenarioError, run, scenario_from_dict
from simulator.model.router import Router
from simulator.registry import ROUTERS, SERVICE_MODELS
from simulator.service.base import ServiceTimeModel
from tests.helpers import base_scenario


@ROUTERS.register
class FirstReplica(Router):
    """Always the first replica that is up: every request lands on one node."""

    class Config(PolicyConfig):
        policy: Literal["test_first_replica"]

    def choose(self, request):
        return self.nodes[0]


@SERVICE_MODELS.register
class Uniform(ServiceTimeModel):
    """Service times uniform on [low_ms, high_ms]."""

    class Config(PolicyConfig):
        distribution: Literal["test_uniform"]
        low_ms: PositiveFloat
        high_ms: PositiveFloat

    def draw_block(self, rng, size, batch_size=1):
        return rng.uniform(self.config.low_ms, self.config.high_ms, size)

    def mean_ms(self, batch_size=1):
        return (self.config.low_ms + self.config.high_ms) / 2

    def second_moment_ms2(self, batch_size=1):
        low, high = self.config.low_ms, self.config.high_ms
        return (low * low + low * high + high * high) / 3


def _two_replicas(router: dict, service: dict) -> dict:
    data = base_scenario(router=router)
    data["run"].update(requests=3000, warmup_requests=300, replications=2)
    data["nodes"][0].update(replicas=2, service=service)
    return data


def test_a_router_and_a_service_model_from_a_test_module_run_in_a_scenario():
    data = _two_replicas({"policy": "test_first_replica"}, {"distribution": "test_uniform", "low_ms": 2, "high_ms": 6})
    result = run(scenario_from_dict(data))
    nodes = result.summary["nodes"]
    assert nodes["n-0"]["served"] == 2 * 3000 and nodes["n-1"]["served"] == 0  # the plug-in router decided
    service = result.estimate("service_ms.mean")
    assert service.ci_low <= 4.0 <= service.ci_high  # the plug-in service model drew the times


def test_plugin_settings_are_validated_with_field_paths():
    data = _two_replicas({"policy": "test_first_replica", "extra": 1}, {"distribution": "test_uniform", "low_ms": -1, "high_ms": 6})
    with pytest.raises(ScenarioError) as error:
        scenario_from_dict(data)
    message = str(error.value)
    assert "router.extra: unknown key; allowed keys here: policy" in message
    assert "nodes[0].service.low_ms: Input should be greater than 0" in message


def test_plugins_appear_in_the_json_schema():
    from simulator.cli import app

    output = CliRunner().invoke(app, ["schema"]).output
    schema = json.dumps(json.loads(output))
    assert "test_first_replica" in schema and "test_uniform" in schema


def test_a_name_registered_twice_is_refused():
    class Other(Router):
        class Config(PolicyConfig):
            policy: Literal["test_first_replica"]

        def choose(self, request):
            return self.nodes[-1]

    with pytest.raises(ValueError, match="registered twice"):
        ROUTERS.register(Other)


class _NoConfig(Router):
    def choose(self, request):
        return self.nodes[0]


class _ConfigNotSettings(Router):
    Config = dict

    def choose(self, request):
        return self.nodes[0]


class _ConfigWithoutName(Router):
    class Config(PolicyConfig):
        weight: float = 1.0

    def choose(self, request):
        return self.nodes[0]


@pytest.mark.parametrize(("plugin", "needle"), [
    (_NoConfig, "router plug-in _NoConfig: register a class with a nested Config"),
    (_ConfigNotSettings, "router plug-in _ConfigNotSettings: register a class with a nested Config"),
    (lambda request: None, "router plug-in function"),
    (3, "router plug-in int 3"),
    (_ConfigWithoutName, "Config: a router needs a field policy: Literal['<name>']"),
], ids=["no-config", "config-not-settings", "a-function", "a-number", "config-without-name"])
def test_registering_what_is_no_plugin_names_what_is_wrong(plugin, needle):
    with pytest.raises(registry.LatsimError, match=re.escape(needle)):
        ROUTERS.register(plugin)
    with pytest.raises(registry.LatsimError, match="register a PolicyConfig subclass"):
        ROUTERS.register_config(dict)


@ROUTERS.register
class _Nowhere(Router):
    """Returns None: a plug-in's mistake the simulation names instead of failing on an attribute."""

    class Config(PolicyConfig):
        policy: Literal["test_nowhere"]

    def choose(self, request):
        return None


def test_a_router_that_chooses_no_replica_is_named():
    data = _two_replicas({"policy": "test_nowhere"}, {"distribution": "test_uniform", "low_ms": 2, "high_ms": 6})
    data["run"].update(requests=100, warmup_requests=10, replications=1)
    with pytest.raises(registry.LatsimError, match=r"router _Nowhere: choose\(\) returned None, not one of the replicas"):
        run(scenario_from_dict(data), engine="simpy")


@pytest.mark.parametrize("field", [None, 3, ["nodes"]])
def test_replace_names_a_field_path_that_is_no_text(field):
    with pytest.raises(ScenarioError, match="a field path is text like nodes\\[0\\].workers"):
        scenario_from_dict(base_scenario()).replace(field, 1)


def test_entry_point_plugins_are_loaded_on_first_lookup(monkeypatch):
    loaded = []

    class EntryPoint:
        name, value = "demo", "demo_package:register"

        def load(self):
            return lambda: loaded.append("registered")

    monkeypatch.setattr(registry, "entry_points", lambda group: [EntryPoint()] if group == "latsim.policies" else [])
    monkeypatch.setattr(registry._Plugins, "loaded", False)
    assert "jsq" in ROUTERS.names()
    assert loaded == ["registered"]
    ROUTERS.names()
    assert loaded == ["registered"]  # once only


def test_a_broken_entry_point_is_named(monkeypatch):
    class EntryPoint:
        name, value = "broken", "broken_package:register"

        def load(self):
            raise ImportError("No module named 'broken_package'")

    monkeypatch.setattr(registry, "entry_points", lambda group: [EntryPoint()])
    monkeypatch.setattr(registry._Plugins, "loaded", False)
    with pytest.raises(registry.LatsimError, match="plug-in entry point 'broken'.*broken_package"):
        ROUTERS.names()


def test_uniform_draws_are_reproducible():
    model = Uniform(Uniform.Config(distribution="test_uniform", low_ms=1, high_ms=2), None)
    first = model.draw_block(np.random.default_rng(1), 5)
    assert np.array_equal(first, model.draw_block(np.random.default_rng(1), 5))
