"""The base of every validated settings object: unknown keys are errors, and a valid value never changes.

Numbers must be numbers: infinities and NaN are refused everywhere (``allow_inf_nan=False``), and so
are YAML's ``true``/``false`` and quoted text (``"12"``) where a number is expected (pydantic would read
``true`` as 1 and ``"12"`` as 12); ``1e3`` stays a number (YAML 1.1 reads it as text for want of a dot).
Fields then bound their values to what is physically meaningful.
"""

import math
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator

_EXPONENT_NUMBER = re.compile(r"[-+]?[0-9]+(\.[0-9]*)?[eE][-+]?[0-9]+")  # 1e3: a number YAML 1.1 leaves as text


class Settings(BaseModel):
    """Strict (``extra="forbid"``), frozen, finite pydantic model: scenario sections and policy settings."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_booleans_as_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        accepted = _accepted_types(cls.model_fields[info.field_name].annotation)
        if isinstance(value, bool) and bool not in accepted:
            raise ValueError("expected a number or text, not true/false")
        if str not in accepted and accepted & {int, float}:
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, str) and not _EXPONENT_NUMBER.fullmatch(item):
                    raise ValueError(f"expected a number, not text ({item[:40]!r}: write it without quotes)")
        return value


def _accepted_types(annotation: Any) -> set:
    """The plain types an annotation accepts (through unions, Optional and Annotated)."""
    import typing

    origin = typing.get_origin(annotation)
    if origin is None:
        return {annotation}
    if origin is typing.Literal:
        return {type(value) for value in typing.get_args(annotation)}
    return {kind for argument in typing.get_args(annotation) for kind in _accepted_types(argument)}


def non_finite_key(data: Any, at: str = "") -> str | None:
    """The key path (``levels[2].speed``) of the first infinity or NaN inside plain data, None when every number is
    finite: checked before latsim writes a file no reader would accept."""
    if isinstance(data, float) and not math.isfinite(data):
        return at or "(top level)"
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, (list, tuple)) else ()
    for key, value in items:
        found = non_finite_key(value, f"{at}[{key}]" if isinstance(key, int) else f"{at}.{key}" if at else str(key))
        if found is not None:
            return found
    return None
