"""Policies by name: a scenario picks each policy (router, discipline, service model, ...) by name.

A policy has two halves. Its **settings** are a :class:`PolicyConfig` (pydantic, strict and
frozen) whose discriminator field is a ``Literal`` of the policy's name; the scenario layer
validates them. Its **behaviour** is a class of the layer that runs it (the model, the service
models, ...), carrying the settings class as ``Config``. Built-in settings are registered by the
scenario layer and built-in behaviour by the layer that implements it, so imports run one way.

A plug-in is one class with a nested ``Config``: ``ROUTERS.register(MyRouter)`` registers both
halves, at any time (scenario fields look the registry up when they validate, not at import).
Packages can also declare plug-ins as ``latsim.policies`` entry points (a module, or a callable
that registers); they are loaded on the first lookup.
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel
from pydantic_core import PydanticCustomError, core_schema

from simulator.errors import LatsimError
from simulator.settings import Settings

PolicyT = TypeVar("PolicyT")
ENTRY_POINT_GROUP = "latsim.policies"


class PolicyConfig(Settings):
    """Base of every policy's settings: unknown keys are errors and a validated value never changes."""


class _Plugins:
    """Loads the ``latsim.policies`` entry points once, before the first registry lookup."""

    loaded = False

    @classmethod
    def load(cls) -> None:
        if cls.loaded:
            return
        cls.loaded = True
        for entry in entry_points(group=ENTRY_POINT_GROUP):
            try:
                target = entry.load()
                if callable(target):
                    target()
            except Exception as error:  # a broken plug-in is the plug-in's fault: name it
                raise LatsimError(f"plug-in entry point {entry.name!r} ({entry.value}) failed to load: {error}") from error


class Registry(Generic[PolicyT]):
    """The policies of one kind, keyed by the value of their settings' discriminator field."""

    def __init__(self, kind: str, discriminator: str, default: str | None = None) -> None:
        self.kind = kind
        self.discriminator = discriminator
        self.default = default  # the policy a mapping without the discriminator means
        self._configs: dict[str, type[PolicyConfig]] = {}
        self._classes: dict[str, type[PolicyT]] = {}

    def _name(self, config: type[BaseModel]) -> str:
        field = config.model_fields.get(self.discriminator)
        values = typing.get_args(field.annotation) if field is not None else ()
        if field is None or typing.get_origin(field.annotation) is not typing.Literal or len(values) != 1:
            raise LatsimError(f"{config.__name__}: a {self.kind} needs a field {self.discriminator}: Literal['<name>']")
        return values[0]

    def register_config(self, config: type[PolicyConfig]) -> type[PolicyConfig]:
        """Register a policy's settings (the scenario side); a class decorator."""
        if not (isinstance(config, type) and issubclass(config, PolicyConfig)):
            raise LatsimError(f"{self.kind} settings {config!r:.80}: register a PolicyConfig subclass")
        name = self._name(config)
        known = self._configs.get(name)
        if known is not None and known is not config:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._configs[name] = config
        return config

    def register(self, cls: type[PolicyT]) -> type[PolicyT]:
        """Register a policy's behaviour, and its ``Config`` if not yet known; a class decorator."""
        config = getattr(cls, "Config", None) if isinstance(cls, type) else None
        if not (isinstance(config, type) and issubclass(config, PolicyConfig)):
            shown = cls.__name__ if isinstance(cls, type) else f"{type(cls).__name__} {cls!r:.80}"
            raise LatsimError(f"{self.kind} plug-in {shown}: register a class with a nested Config, a PolicyConfig subclass "
                              f"whose field {self.discriminator}: Literal['<name>'] names it")
        self.register_config(config)
        name = self._name(config)
        if name in self._classes and self._classes[name] is not cls:
            raise ValueError(f"{self.kind} {name!r} has two implementations")
        self._classes[name] = cls
        return cls

    def names(self) -> list[str]:
        _Plugins.load()
        return sorted(self._configs)

    def configs(self) -> list[type[PolicyConfig]]:
        _Plugins.load()
        return [self._configs[name] for name in sorted(self._configs)]

    def config_for(self, value: Any) -> type[PolicyConfig] | None:
        """The settings class that raw settings name (None if they name none), for error messages."""
        name = value.get(self.discriminator, self.default) if isinstance(value, dict) else None
        return self._configs.get(name) if isinstance(name, str) else None

    def policy_class(self, config: BaseModel) -> type[PolicyT]:
        """The behaviour registered for validated settings."""
        _Plugins.load()
        name = getattr(config, self.discriminator)
        if name not in self._classes:
            raise LatsimError(f"{self.kind} {name!r} has settings but no registered implementation")
        return self._classes[name]

    def build(self, config: BaseModel, *args: Any, **kwargs: Any) -> PolicyT:
        """An instance of the policy that ``config`` names, constructed with ``(config, *args)``."""
        return self.policy_class(config)(config, *args, **kwargs)

    def validate(self, value: Any) -> PolicyConfig:
        """Validate raw settings (a mapping) into the registered settings class it names."""
        if isinstance(value, PolicyConfig) and type(value) in self._configs.values():
            return value
        if not isinstance(value, dict):
            raise PydanticCustomError(
                "policy_type", "expected a mapping with {key}: one of {names}",
                {"key": self.discriminator, "names": ", ".join(self.names())},
            )
        name = value.get(self.discriminator, self.default)
        if name is None:
            raise PydanticCustomError(
                "policy_missing", "{key} is required: one of {names}",
                {"key": self.discriminator, "names": ", ".join(self.names())},
            )
        config = self._configs.get(name) if isinstance(name, str) else None
        if config is None:
            _Plugins.load()
            config = self._configs.get(name) if isinstance(name, str) else None
        if config is None:
            raise PydanticCustomError(
                "policy_unknown", "unknown {kind} {name}; {key} must be one of {names}",
                {"kind": self.kind, "name": repr(name), "key": self.discriminator, "names": ", ".join(self.names())},
            )
        if self.discriminator not in value:
            value = {self.discriminator: name, **value}
        return config.model_validate(value)

    def field(self) -> Any:
        """A type for scenario fields holding this kind's settings, resolved at validation time."""
        return Annotated[PolicyConfig, PolicyField(self)]


class PolicyField:
    """Pydantic hooks of a registry-backed field: validation and JSON Schema look the registry up late."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def __get_pydantic_core_schema__(self, source: Any, handler: Callable) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(self.registry.validate)

    def __get_pydantic_json_schema__(self, schema: core_schema.CoreSchema, handler: Callable) -> dict:
        return {"oneOf": [handler(config.__pydantic_core_schema__) for config in self.registry.configs()]}


ARRIVAL_PROCESSES: Registry = Registry("arrival process", "process")
KEY_POPULARITY: Registry = Registry("key popularity", "popularity")
SERVICE_MODELS: Registry = Registry("service model", "distribution")
DISCIPLINES: Registry = Registry("queue discipline", "policy")
ADMISSION_POLICIES: Registry = Registry("admission policy", "policy")
BATCHERS: Registry = Registry("batcher", "policy", default="triton")
ROUTERS: Registry = Registry("router", "policy")
PARTITIONERS: Registry = Registry("partitioning scheme", "scheme", default="hash")
FAILURE_HANDLING: Registry = Registry("failure handling", "in_flight", default="retry")
CACHE_POLICIES: Registry = Registry("cache policy", "policy")
DISRUPTIONS: Registry = Registry("event", "type")
