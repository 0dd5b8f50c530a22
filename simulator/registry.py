"""Name → policy class registries, so that a scenario picks a policy by name.

Each policy class carries a pydantic ``Config`` model whose discriminator field is a
``Literal`` of the policy's name; the registry assembles those configs into one
discriminated union for the scenario schema. Adding a policy is one decorated class.
"""

from __future__ import annotations

from typing import Annotated, Any, Generic, TypeVar, Union

from pydantic import Field

PolicyT = TypeVar("PolicyT")


class Registry(Generic[PolicyT]):
    """Policies of one kind (arrival processes, disciplines, ...) keyed by the discriminator value."""

    def __init__(self, kind: str, discriminator: str) -> None:
        self.kind = kind
        self.discriminator = discriminator
        self._classes: dict[str, type[PolicyT]] = {}

    def register(self, cls: type[PolicyT]) -> type[PolicyT]:
        config = cls.Config  # type: ignore[attr-defined]
        field = config.model_fields[self.discriminator]
        (name,) = field.annotation.__args__  # the Literal's single value
        if name in self._classes:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._classes[name] = cls
        return cls

    def names(self) -> list[str]:
        return sorted(self._classes)

    def config_type(self) -> Any:
        """The discriminated union of every registered policy's Config, for the scenario schema."""
        configs = tuple(cls.Config for cls in self._classes.values())  # type: ignore[attr-defined]
        return Annotated[Union[configs], Field(discriminator=self.discriminator)]  # noqa: UP007

    def policy_class(self, config: Any) -> type[PolicyT]:
        return self._classes[getattr(config, self.discriminator)]
