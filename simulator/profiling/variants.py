"""Model variants: the same model made cheaper in the ways the mission names, as real kernels.

Precision variants convert a trained float model (``fp32``, ``int8``, ``bf16``, ``fp16``);
``pruned`` and ``distilled`` make a new, smaller float model of a zoo family (see
:mod:`simulator.profiling.zoo_variants`). A variant that cannot run on the chosen device is not
faked: :class:`VariantUnavailable` carries the reason, which the bundle records.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from simulator.profiling.hardware import native_bf16
from simulator.profiling.quantization import (
    Int8Backend,
    quantize_int8,
    torchao_available,
    uses_torchao,
)

VARIANTS = ("fp32", "int8", "bf16", "fp16", "pruned", "distilled")
PRECISIONS = {"fp32": torch.float32, "int8": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def inference_mode_of(module: nn.Module) -> nn.Module:
    """``module`` in eval mode; a torch.export module has no train/eval switch and is returned as is."""
    try:
        return module.eval()
    except NotImplementedError:
        return module


class VariantUnavailable(Exception):
    """This variant cannot be built or run here; the message says why (it goes into the bundle)."""


@dataclass
class FloatModel:
    """A trained float model and how to get an empty one of the same structure (for cold starts).

    ``skeleton`` returns a model whose weights are then loaded from a saved state dict; when
    ``skeleton_has_weights`` it loads the weights itself (a TorchScript / torch.export file).
    """

    module: nn.Module
    skeleton: Callable[[], nn.Module] | None
    skeleton_has_weights: bool = False


@dataclass
class Built:
    """A variant ready to time: its module on the device, input dtype and how to rebuild it empty."""

    module: nn.Module
    dtype: torch.dtype
    skeleton: Callable[[], nn.Module] | None
    info: dict[str, Any] = field(default_factory=dict)
    saved_state: Callable[[], dict[str, Any]] | None = None  # what a cold start loads (default: the module's)
    after_load: Callable[[nn.Module], nn.Module] | None = None  # applied to the loaded skeleton


def convert(
    precision: str,
    source: FloatModel,
    device: torch.device,
    calibration: Sequence[tuple[torch.Tensor, ...]],
    int8_backend: Int8Backend = "auto",
) -> Built:
    """``source`` (a float CPU model) at ``precision`` on ``device``."""
    skeleton = source.skeleton
    if precision == "fp32":
        return Built(inference_mode_of(copy.deepcopy(source.module).to(device)), torch.float32, skeleton)
    if precision == "int8":
        if device.type != "cpu" and not uses_torchao(int8_backend, device):
            raise VariantUnavailable("torch.ao's int8 kernels run on the CPU only; GPU int8 needs --int8-backend torchao")
        if device.type != "cpu" and not torchao_available():
            raise VariantUnavailable("GPU int8 needs torchao (pip install torchao); it is not installed")
        if isinstance(source.module, torch.jit.ScriptModule):
            raise VariantUnavailable("a TorchScript model cannot be quantized here; quantize it before scripting")
        quantized = quantize_int8(source.module, calibration, int8_backend, device)
        if quantized.info["int8_layers"] == 0:
            raise VariantUnavailable("the model has no nn.Linear or nn.Conv2d modules that int8 quantization replaces")
        rebuild = quantized.rebuild
        info = {"quantization": quantized.info}
        if _holds_script_objects(quantized.module) and "dynamic" in quantized.info["backend"]:
            info["notes"] = [
                "cold start loads the float weights and quantizes them dynamically at start-up: packed int8 "
                "LSTM weights are TorchScript objects, which weights-only loading refuses; size is the float file's"
            ]
            module = quantized.module.eval()
            return Built(module, torch.float32, skeleton, info, source.module.state_dict, rebuild)
        int8_skeleton = None if skeleton is None or source.skeleton_has_weights else (lambda: rebuild(skeleton()))
        return Built(quantized.module.eval(), torch.float32, int8_skeleton, info)
    dtype = PRECISIONS[precision]
    notes = []
    if precision == "fp16" and device.type == "cpu":
        raise VariantUnavailable("fp16 is profiled on GPU only: CPUs have no fp16 matrix kernels worth serving with")
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise VariantUnavailable(f"{torch.cuda.get_device_name(device)} has no bf16 support")
    if precision == "bf16" and device.type == "cpu" and not native_bf16():
        notes.append("this CPU has no native bf16 instructions (avx512_bf16 / amx_bf16): bf16 kernels are emulated")
    half_skeleton = None if skeleton is None else (lambda: skeleton().to(dtype))
    module = inference_mode_of(copy.deepcopy(source.module).to(device=device, dtype=dtype))
    return Built(module, dtype, half_skeleton, {"notes": notes})


def _holds_script_objects(module: nn.Module) -> bool:
    return any(isinstance(value, torch.ScriptObject) for value in module.state_dict().values())


def cold_loader(
    built: Built, artifact: Path, device: torch.device, skeleton_has_weights: bool
) -> Callable[[], nn.Module]:
    """Save the variant to ``artifact``; the returned function loads it back as a server would at start-up.

    The state dict is read with ``torch.load(weights_only=True)``: a weights file is data, never code.
    """
    skeleton = built.skeleton
    assert skeleton is not None
    if skeleton_has_weights:
        return lambda: inference_mode_of(skeleton().to(device))
    torch.save((built.saved_state or built.module.state_dict)(), artifact)
    after_load = built.after_load or (lambda model: model)

    def load() -> nn.Module:
        model = skeleton()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # quantized tensors still use TypedStorage inside torch
            state = torch.load(artifact, map_location=device, weights_only=True)
        model.load_state_dict(state)
        return inference_mode_of(after_load(model).to(device))

    return load
