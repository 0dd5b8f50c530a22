"""Load scenario files safely and turn every validation problem into one clear message.

Each message names the file, the field path (``workload.classes[1].deadline_ms``) and what is
allowed there; YAML is read with the safe loader only.
"""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from simulator.errors import ScenarioError
from simulator.registry import PolicyField
from simulator.scenario.schema import Scenario


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a YAML scenario file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ScenarioError(f"{path}: cannot read the scenario file: {error.strerror or error}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        raise ScenarioError(f"{path}: not valid YAML{where}: {problem}") from None
    return scenario_from_dict(data, source=str(path), base_dir=path.resolve().parent)


def scenario_from_dict(data: Any, source: str = "<scenario>", base_dir: Path | None = None) -> Scenario:
    """Validate a scenario given as plain data (what the YAML file holds); files resolve against ``base_dir``."""
    if not isinstance(data, dict):
        raise ScenarioError(f"{source}: a scenario must be a mapping of keys (name, workload, nodes, ...), not {type(data).__name__}")
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as error:
        problems = "\n".join(f"  - {_describe(item, data)}" for item in error.errors())
        raise ScenarioError(f"{source}: invalid scenario ({error.error_count()} problem(s)):\n{problems}") from None
    scenario._base_dir = base_dir or Path.cwd()
    scenario._source = source
    return scenario


def _describe(error: dict, data: Any) -> str:
    """``field.path: message`` for one pydantic error, with union tags removed from the path."""
    path, model, node = [], Scenario, data
    parent_model = model
    location = list(error["loc"])
    for index, part in enumerate(location):
        is_last = index == len(location) - 1
        if isinstance(node, dict) and part in node:
            node = node[part]
            parent_model, model = model, _field_model(model, part, node)
            path.append(str(part))
        elif isinstance(node, list) and isinstance(part, int):
            node = node[part] if part < len(node) else None
            path[-1] = f"{path[-1]}[{part}]" if path else f"[{part}]"
        elif is_last or not isinstance(node, dict):
            path.append(str(part))
        # else: a discriminated-union tag pydantic adds to the path; it is not a key of the file
    field = ".".join(path) or "(top level)"
    message = error["msg"]
    if error["type"] == "extra_forbidden":
        allowed = sorted(parent_model.model_fields) if parent_model else []
        message = f"unknown key; allowed keys here: {', '.join(allowed)}"
        field = ".".join(path)
    elif error["type"] == "missing":
        message = "required field is missing"
    elif "input" in error and not isinstance(error["input"], (dict, list)) and error["type"] != "value_error":
        message = f"{message} (got {error['input']!r})"
    return f"{field}: {message}"


def _field_model(model: type[BaseModel] | None, key: Any, value: Any) -> type[BaseModel] | None:
    """The model class that validates ``value`` under ``model.key`` (to list its allowed keys)."""
    if model is None or not isinstance(key, str) or key not in getattr(model, "model_fields", {}):
        return None
    field = model.model_fields[key]
    registry = next((meta.registry for meta in field.metadata if isinstance(meta, PolicyField)), None)
    if registry is not None:  # pydantic keeps a top-level Annotated's metadata on the field
        return registry.config_for(value)
    return _model_in(field.annotation, value)


def _model_in(annotation: Any, value: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        registry = next((meta.registry for meta in annotation.__metadata__ if isinstance(meta, PolicyField)), None)
        if registry is not None:
            return registry.config_for(value)
        return _model_in(args[0], value)
    if origin is list:
        return _model_in(args[0], value[0] if isinstance(value, list) and value else None)
    if origin in (typing.Union, types.UnionType):
        candidates = [m for m in (_model_in(arg, value) for arg in args) if m is not None]
        for candidate in candidates:
            if isinstance(value, dict) and all(
                typing.get_origin(field.annotation) is typing.Literal and value.get(name) in typing.get_args(field.annotation)
                for name, field in candidate.model_fields.items()
                if typing.get_origin(field.annotation) is typing.Literal
            ):
                return candidate
        return candidates[0] if len(candidates) == 1 else None
    return None
