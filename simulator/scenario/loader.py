"""Load scenario files safely and turn every validation problem into one clear message.

Each message names the file, the field path (``workload.classes[1].deadline_ms``) and what is
allowed there. YAML (and JSON, which is YAML) is read with the safe loader only, and hostile files
are refused before they cost much: a file must be a regular UTF-8 text file of at most
``MAX_FILE_BYTES``; its structure is checked event by event, without recursion, for nesting deeper
than ``MAX_DEPTH`` and for more than ``MAX_VALUES`` values once YAML aliases and merge keys are
expanded (a "billion laughs" file); a key repeated in one mapping is an error, not a silent
override. At most ``MAX_PROBLEMS`` validation problems are listed, each cut to ``MAX_PROBLEM_CHARS``.
``read_yaml`` applies the same reading rules to the other YAML files users give (a testbed calibration).
"""

from __future__ import annotations

import codecs
import types
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from simulator.errors import LatsimError, ScenarioError
from simulator.files import UnusableFile, read_regular_file
from simulator.registry import PolicyField
from simulator.scenario.schema import Scenario

MAX_FILE_BYTES = 10_000_000  # a scenario names its data files; it never holds data itself
MAX_DEPTH = 64  # mappings and lists inside each other; real scenarios use fewer than 10
MAX_VALUES = 200_000  # keys, scalars, lists and mappings, YAML aliases expanded; real scenarios use a few hundred
MAX_PROBLEMS = 20
MAX_PROBLEM_CHARS = 300

_BASE_LOADER: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _StrictLoader(_BASE_LOADER):  # type: ignore[misc, valid-type]
    """The safe loader, refusing a key repeated in one mapping (YAML allows it; the later one would silently win)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        first_line: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:
                continue  # keys merged in with `<<` may be overridden: that is what merging is for
            key = self.construct_object(key_node, deep=True)
            try:
                seen = key in first_line
            except TypeError:
                continue  # an unhashable key: the safe constructor reports it below
            if seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {_short(key)} (first given at line {first_line[key]})", key_node.start_mark
                )
            first_line[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a YAML (or JSON) scenario file; every problem is a ScenarioError naming the file."""
    path = Path(path)
    data = read_yaml(path)
    if data is None:
        raise ScenarioError(f"{path}: the file is empty (or only comments); a scenario needs name, workload and nodes")
    return scenario_from_dict(data, source=str(path), base_dir=path.resolve().parent)


def read_yaml(path: Path, document: str = "scenario", error: type[LatsimError] = ScenarioError) -> Any:
    """An untrusted YAML (or JSON) file as plain data, under the rules of the module doc (None: an empty
    file); every problem is an ``error`` naming the file (``document`` says what the file should be)."""
    try:
        raw = read_regular_file(path, MAX_FILE_BYTES)
    except UnusableFile as reason:
        raise error(f"{path}: cannot use this {document} file: it {reason}") from None
    text = _decode(raw, path, document, error)
    try:
        _check_structure(text, path, document, error)
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a subclass of the safe loader
    except yaml.YAMLError as problem_error:
        mark = getattr(problem_error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(problem_error, "problem", None) or str(problem_error)
        raise error(f"{path}: not valid YAML{where}: {_cut(problem)}") from None
    except (ValueError, OverflowError) as value_error:  # a value the YAML types cannot hold: a 5000-digit integer, month 13
        raise error(f"{path}: not valid YAML: a value cannot be read: {_cut(str(value_error))}") from None


def _decode(raw: bytes, path: Path, document: str, error: type[LatsimError]) -> str:
    """The file's text: UTF-8 (a byte-order mark is allowed); UTF-16/32 and binary files are refused by name."""
    for boms, encoding in (((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE), "UTF-32"), ((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE), "UTF-16")):
        if raw.startswith(boms):
            raise error(f"{path}: the file is {encoding} text; save it as UTF-8")
    if b"\0" in raw:
        line = raw.count(b"\n", 0, raw.index(b"\0")) + 1
        raise error(f"{path}: not a text file (a NUL byte at line {line}): binary data or UTF-16/32 text; a {document} is UTF-8 YAML")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as decode_error:
        line = raw.count(b"\n", 0, decode_error.start) + 1
        raise error(
            f"{path}: not UTF-8 text: byte 0x{raw[decode_error.start]:02x} at line {line} is not UTF-8; save the file as UTF-8"
        ) from None


def _check_structure(text: str, path: Path, document: str, error: type[LatsimError]) -> None:
    """Refuse nesting deeper than MAX_DEPTH and more than MAX_VALUES values (aliases expanded), from parser events.

    Reading events keeps the check itself free of recursion and of the expanded data: a value
    that an alias repeats is counted once per repetition without being built.
    """
    expanded: dict[str, int] = {}  # anchor → values its node holds, expanded
    open_nodes: list[tuple[str | None, int]] = []  # (anchor, count before the node) of every open list or mapping
    count = 0
    for event in yaml.parse(text, Loader=_BASE_LOADER):
        if isinstance(event, yaml.AliasEvent):
            if any(anchor == event.anchor for anchor, _ in open_nodes):
                raise error(f"{path}: line {event.start_mark.line + 1}: alias *{event.anchor} refers to a value that contains it")
            count += expanded.get(event.anchor, 1)
        elif isinstance(event, yaml.ScalarEvent):
            count += 1
            if event.anchor is not None:
                expanded[event.anchor] = 1
        elif isinstance(event, yaml.CollectionStartEvent):
            open_nodes.append((event.anchor, count))
            count += 1
            if len(open_nodes) > MAX_DEPTH:
                raise error(
                    f"{path}: line {event.start_mark.line + 1}: lists and mappings are nested more than {MAX_DEPTH} deep"
                )
        elif isinstance(event, yaml.CollectionEndEvent):
            anchor, before = open_nodes.pop()
            if anchor is not None:
                expanded[anchor] = count - before
        if count > MAX_VALUES:
            raise error(
                f"{path}: line {event.start_mark.line + 1}: more than {MAX_VALUES} values (with YAML aliases expanded); "
                f"a {document} names its data files instead of holding data"
            )


def scenario_from_dict(data: Any, source: str = "<scenario>", base_dir: Path | None = None) -> Scenario:
    """Validate a scenario given as plain data (what the YAML file holds); files resolve against ``base_dir``."""
    if not isinstance(data, dict):
        raise ScenarioError(f"{source}: a scenario must be a mapping of keys (name, workload, nodes, ...), not {type(data).__name__}")
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as error:
        problems = [f"  - {_cut(_describe(item, data))}" for item in error.errors()[:MAX_PROBLEMS]]
        more = error.error_count() - len(problems)
        if more > 0:
            problems.append(f"  … and {more} more")
        raise ScenarioError(f"{source}: invalid scenario ({error.error_count()} problem(s)):\n" + "\n".join(problems)) from None
    scenario._base_dir = base_dir or Path.cwd()
    scenario._source = source
    return scenario


def _short(value: Any, limit: int = 60) -> str:
    """``repr(value)``, cut to ``limit`` characters: a message quotes what it got, never megabytes of it."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _cut(text: str, limit: int = MAX_PROBLEM_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


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
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        allowed = sorted(parent_model.model_fields) if parent_model else []
        message = f"unknown key; allowed keys here: {', '.join(allowed)}"
        field = ".".join(path)
    elif error["type"] == "missing":
        message = "required field is missing"
    elif "input" in error and not isinstance(error["input"], (dict, list)) and error["type"] != "value_error":
        message = f"{message} (got {_short(error['input'])})"
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
