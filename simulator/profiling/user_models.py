"""Users' own models: an importable factory, a TorchScript or torch.export file, or an nn.Module.

Untrusted files stay data: TorchScript archives are read with ``torch.jit.load`` and exported
programs with ``torch.export.load`` (model formats, not Python pickles), and weights saved for a
cold start are read back with ``torch.load(weights_only=True)``. Only a factory the user names is
imported (it is the user's own code, run at their request).

Without labels a user model's quality cost is its agreement with its own fp32 outputs on the
example batch (top-1 for classifier-shaped outputs, and the relative error of all outputs).
"""

from __future__ import annotations

import importlib
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from simulator.profiling.complexity import count_flops, count_parameters
from simulator.profiling.errors import ProfilingError
from simulator.profiling.quality import top1_agreement
from simulator.profiling.quantization import Int8Backend
from simulator.profiling.servable import Payload, RequestCodec, Servable, arrays_answer
from simulator.profiling.variants import (
    PRECISIONS,
    FloatModel,
    VariantUnavailable,
    cold_loader,
    convert,
)

EXAMPLE_ROWS = 64
FACTORY_PATTERN = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


@dataclass
class UserModel:
    """A user's float model, where it came from, and an example input batch (dim 0 is the batch)."""

    name: str
    origin: dict[str, str]
    source: FloatModel
    example: tuple[torch.Tensor, ...]
    size_bytes: int | None = None


def parse_shape(text: str) -> tuple[int, ...]:
    """``"1,3,32,32"`` → (1, 3, 32, 32); the first dimension is the batch dimension."""
    try:
        shape = tuple(int(part) for part in text.replace("x", ",").split(","))
    except ValueError:
        raise ProfilingError(f"--input-shape {text!r}: give comma-separated integers, e.g. 1,3,32,32") from None
    if len(shape) < 1 or any(size < 1 for size in shape):
        raise ProfilingError(f"--input-shape {text!r}: every dimension must be a positive integer")
    return shape


def parse_dtype(name: str) -> torch.dtype:
    dtype = getattr(torch, name, None)
    if not isinstance(dtype, torch.dtype):
        raise ProfilingError(f"--input-dtype {name!r} is not a torch dtype (e.g. float32, int64, uint8)")
    return dtype


def random_example(shape: Sequence[int], dtype: torch.dtype, high: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """An example batch of ``EXAMPLE_ROWS`` random rows: standard normal floats, or integers in [0, high)."""
    generator = torch.Generator().manual_seed(seed)
    size = (EXAMPLE_ROWS, *shape[1:])
    if dtype.is_floating_point:
        return (torch.randn(size, generator=generator).to(dtype),)
    return (torch.randint(0, high, size, generator=generator).to(dtype),)


def import_factory(spec: str) -> Callable[[], nn.Module]:
    """``package.module:build`` → the callable ``build`` of that importable module."""
    if not FACTORY_PATTERN.match(spec):
        raise ProfilingError(f"--model {spec!r}: expected package.module:function, e.g. mymodels.vision:build")
    module_name, attribute = spec.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ProfilingError(
            f"--model {spec!r}: cannot import {module_name!r} ({error}); is it on PYTHONPATH?"
        ) from None
    factory = getattr(module, attribute, None)
    if not callable(factory):
        raise ProfilingError(f"--model {spec!r}: {module_name} has no callable {attribute!r}")
    return factory


def _built(factory: Callable[[], Any], spec: str) -> nn.Module:
    model = factory()
    if not isinstance(model, nn.Module):
        raise ProfilingError(f"--model {spec!r} returned a {type(model).__name__}, not a torch.nn.Module")
    return model.eval()


def from_factory(spec: str, example: tuple[torch.Tensor, ...], name: str | None = None) -> UserModel:
    factory = import_factory(spec)
    model = _built(factory, spec)
    default_name = spec.split(":")[0].rsplit(".", 1)[-1] + "-" + spec.split(":")[1]
    return UserModel(
        name or default_name,
        {"kind": "factory", "factory": spec},
        FloatModel(model, lambda: _built(factory, spec)),
        example,
    )


def _load_file(path: Path) -> nn.Module:
    if path.suffix == ".pt2":
        try:
            return torch.export.load(path).module()
        except Exception as error:  # torch.export raises many error types for foreign files
            raise ProfilingError(f"--model-file {path}: not a torch.export program ({error})") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript is deprecated, yet users still have files
            return torch.jit.load(str(path), map_location="cpu").eval()
    except Exception as error:  # torch.jit.load raises RuntimeError or pickle errors for foreign files
        raise ProfilingError(
            f"--model-file {path}: not a TorchScript archive ({error}). A state-dict file is not a model: "
            "profile it with --model package.module:build, whose build() loads the weights"
        ) from None


def from_file(path: Path, example: tuple[torch.Tensor, ...], name: str | None = None) -> UserModel:
    """A TorchScript archive (.pt, .ts, ...) or a torch.export program (.pt2)."""
    path = Path(path)
    if not path.is_file():
        raise ProfilingError(f"--model-file {path}: no such file")
    kind = "torch.export" if path.suffix == ".pt2" else "torchscript"
    return UserModel(
        name or path.stem,
        {"kind": kind, "file": str(path)},
        FloatModel(_load_file(path), lambda: _load_file(path), skeleton_has_weights=True),
        example,
        size_bytes=path.stat().st_size,
    )


def from_module(
    module: nn.Module,
    example: torch.Tensor | tuple[torch.Tensor, ...],
    name: str = "model",
    factory: Callable[[], nn.Module] | None = None,
) -> UserModel:
    """A model given as an object; ``factory`` (an empty model of the same structure) enables cold starts."""
    example = example if isinstance(example, tuple) else (example,)
    return UserModel(
        name, {"kind": "python", "class": type(module).__name__}, FloatModel(module.eval(), factory), example
    )


def _arrays(example: tuple[torch.Tensor, ...]) -> Payload:
    """The example batch as numpy (which has no bfloat16: those go as float32)."""
    return tuple((t.float() if t.dtype == torch.bfloat16 else t).detach().cpu().numpy() for t in example)


def _codec(example: tuple[torch.Tensor, ...]) -> RequestCodec:
    """Requests are rows of the example batch; float inputs take the variant's precision."""
    originals = [tensor.dtype for tensor in example]
    arrays = _arrays(example)

    def make_payload(batch_size: int, rng: np.random.Generator) -> Payload:
        rows = rng.integers(0, len(arrays[0]), batch_size)
        return tuple(array[rows] for array in arrays)

    def prepare(payload: Payload, dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
        return tuple(
            torch.from_numpy(array).to(original if dtype == torch.float32 or not original.is_floating_point else dtype)
            for array, original in zip(payload, originals)
        )

    return RequestCodec(make_payload, prepare, arrays_answer)


def _float_leaves(output: Any) -> list[torch.Tensor]:
    if isinstance(output, torch.Tensor):
        return [output.detach().float().cpu()] if output.is_floating_point() else []
    if isinstance(output, dict):
        output = list(output.values())
    if isinstance(output, (tuple, list)):
        return [leaf for item in output for leaf in _float_leaves(item)]
    return []


def output_agreement(output: Any, reference: Any) -> dict[str, float | None]:
    """Relative L2 error of all float outputs, and top-1 agreement of the first classifier-shaped one."""
    leaves, reference_leaves = _float_leaves(output), _float_leaves(reference)
    if not reference_leaves or len(leaves) != len(reference_leaves):
        return {"agreement_with_fp32": None, "relative_error": None}
    error = sum(float(torch.linalg.vector_norm(a - b)) for a, b in zip(leaves, reference_leaves))
    scale = sum(float(torch.linalg.vector_norm(b)) for b in reference_leaves) or 1.0
    first = reference_leaves[0]
    agreement = None
    if first.ndim >= 2 and first.shape[-1] >= 2:
        agreement = top1_agreement(leaves[0].argmax(-1).numpy(), first.argmax(-1).numpy())
    return {"agreement_with_fp32": agreement, "relative_error": error / scale}


def user_servables(
    model: UserModel,
    variants: Sequence[str],
    device: torch.device,
    workdir: Path,
    int8_backend: Int8Backend = "auto",
    log: Callable[[str], None] = lambda message: None,
) -> tuple[list[Servable], list[dict[str, str]]]:
    """The user model's precision variants on ``device``, and the ones skipped (with reasons)."""
    codec = _codec(model.example)
    example_payload = _arrays(model.example)
    calibration = [model.example]
    source = model.source
    with torch.inference_mode():
        reference = source.module(*codec.prepare(example_payload, torch.float32))
    try:
        flops: int | None = count_flops(source.module, tuple(t[:1] for t in model.example))
    except Exception:  # the FLOP counter cannot trace every user model (e.g. some TorchScript ops)
        flops = None
    servables, skipped = [], []
    for variant in variants:
        try:
            if variant not in PRECISIONS:
                raise VariantUnavailable(
                    f"{variant} needs a zoo architecture; prune or distil your model yourself and profile the result"
                )
            built = convert(variant, source, device, calibration, int8_backend)
        except VariantUnavailable as reason:
            skipped.append({"family": model.name, "variant": variant, "device": device.type, "reason": str(reason)})
            continue
        log(f"{model.name}/{variant}: comparing with fp32")
        with torch.inference_mode():
            output = built.module(*(t.to(device) for t in codec.prepare(example_payload, built.dtype)))
        notes = list(built.info.get("notes", []))
        artifact = workdir / f"{model.name}-{variant}.pt"
        cold_load = None
        if built.skeleton is None:
            notes.append("cold start not measured: no factory to rebuild the model from saved weights")
        else:
            cold_load = cold_loader(built, artifact, device, source.skeleton_has_weights)
        size = model.size_bytes if source.skeleton_has_weights else (artifact.stat().st_size if cold_load else None)
        info = {
            "family": model.name,
            "variant": variant,
            "device": device.type,
            "dtype": "int8" if variant == "int8" else str(built.dtype).removeprefix("torch."),
            "origin": model.origin,
            "params": count_parameters(source.module),
            "flops_per_sample": flops,
            "size_bytes": size,
            "quality": {"accuracy": None, **output_agreement(output, reference)},
            "quantization": built.info.get("quantization"),
            "notes": notes,
        }
        servables.append(Servable(model.name, variant, device, built.dtype, built.module, codec, cold_load, info))
    return servables, skipped
