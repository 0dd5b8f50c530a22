"""int8 quantization of a float model, with a record of which backend did what.

- Models with convolutions: static post-training quantization with torch.ao's FX graph mode
  (convolutions, the linear head and residual adds run as int8 kernels; activation scales are
  calibrated on a few real input batches). If FX cannot trace the model, it falls back to the
  dynamic path below and says that only the linear layers are int8.
- Other models: dynamic quantization (int8 weights, activations quantized per call) of every
  ``nn.Linear`` and ``nn.LSTM`` with ``torch.ao.quantization.quantize_dynamic`` (fbgemm / x86
  kernels), or of every ``nn.Linear`` with torchao's ``Int8DynamicActivationInt8WeightConfig``.
- On a GPU only torchao has int8 kernels (``torch._int_mm``): there every model gets its dynamic
  linear quantization.

``auto`` picks torch.ao on the CPU and torchao on the GPU. torchao works on the CPU too, but its
int8 path there was measured slower than torch.ao's on this project's CPU (see docs/profiling.md).

Each result carries ``rebuild``: given a fresh float model of the same architecture it returns an
empty quantized model of the same structure, into which a saved int8 state dict loads (cold start).
"""

from __future__ import annotations

import copy
import functools
import importlib.util
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

Int8Backend = Literal["auto", "torchao", "torch.ao"]


@dataclass
class Quantized:
    module: nn.Module
    rebuild: Callable[[nn.Module], nn.Module]
    info: dict[str, Any]


@contextmanager
def _quiet() -> Iterator[None]:
    """torch.ao.quantization warns that it is deprecated on every call; it still works on this torch."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        yield


def count_int8_layers(model: nn.Module) -> int:
    """Layers that run as int8 kernels: torch.ao's quantized modules (dynamic LSTMs included), or linears
    holding torchao int8 weights."""
    return sum(
        ".quantized" in type(module).__module__
        and (callable(getattr(module, "weight", None)) or isinstance(module, torch.ao.nn.quantized.dynamic.LSTM))
        or type(getattr(module, "weight", None)).__module__.startswith("torchao")
        for module in model.modules()
    )


def torchao_available() -> bool:
    return importlib.util.find_spec("torchao") is not None


def _torch_ao_dynamic(model: nn.Module) -> nn.Module:
    with _quiet():
        return torch.ao.quantization.quantize_dynamic(copy.deepcopy(model), {nn.Linear, nn.LSTM}, dtype=torch.qint8)


def _torchao_dynamic(model: nn.Module, device: torch.device) -> nn.Module:
    from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_

    quantized = copy.deepcopy(model).to(device)
    quantize_(quantized, Int8DynamicActivationInt8WeightConfig())
    return quantized


def _static_fx(model: nn.Module, calibration: Sequence[tuple[torch.Tensor, ...]]) -> Quantized:
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    engine = torch.backends.quantized.engine
    example = calibration[0]

    def convert(float_model: nn.Module, batches: Sequence[tuple[torch.Tensor, ...]]) -> nn.Module:
        with _quiet():
            prepared = prepare_fx(copy.deepcopy(float_model).eval(), get_default_qconfig_mapping(engine), example)
            with torch.inference_mode():
                for batch in batches:
                    prepared(*batch)
            return convert_fx(prepared)

    return Quantized(
        module=convert(model, calibration),
        rebuild=lambda float_model: convert(float_model, ()),
        info={
            "backend": "torch.ao.quantization.quantize_fx (static post-training)",
            "engine": engine,
            "scope": "convolutions, linear layers and residual adds run as int8 kernels",
            "calibration_batches": len(calibration),
        },
    )


def _dynamic(model: nn.Module, use_torchao: bool, device: torch.device) -> Quantized:
    info = {"scope": "linear and LSTM layers (int8 weights, activations quantized per call)"}
    if use_torchao:
        quantize = functools.partial(_torchao_dynamic, device=device)
        info.update(
            backend="torchao Int8DynamicActivationInt8WeightConfig",
            scope="linear layers only (int8 weights, activations quantized per call)",
        )
    else:
        quantize = _torch_ao_dynamic
        info.update(backend="torch.ao.quantization.quantize_dynamic", engine=torch.backends.quantized.engine)
    return Quantized(module=quantize(model), rebuild=quantize, info=info)


def uses_torchao(backend: Int8Backend, device: torch.device) -> bool:
    """Whether ``backend`` means torchao on ``device`` (auto: torchao on a GPU, torch.ao on the CPU)."""
    return backend == "torchao" or (backend == "auto" and device.type != "cpu")


def quantize_int8(
    model: nn.Module,
    calibration: Sequence[tuple[torch.Tensor, ...]],
    backend: Int8Backend = "auto",
    device: torch.device = torch.device("cpu"),
) -> Quantized:
    """An int8 copy of a float CPU ``model`` on ``device``; ``calibration`` holds input batches for static scales."""
    use_torchao = uses_torchao(backend, device)
    if use_torchao and not torchao_available():
        raise ImportError("int8 with torchao (the only int8 backend on a GPU) needs torchao: pip install torchao")
    if device.type != "cpu" and not use_torchao:
        raise ImportError("torch.ao's int8 kernels run on the CPU only; on a GPU use --int8-backend torchao (or auto)")
    has_conv = any(isinstance(m, nn.Conv2d) for m in model.modules())
    if not has_conv or use_torchao:
        result = _dynamic(model, use_torchao, device)
    else:
        try:
            result = _static_fx(model, calibration)
        except Exception as error:  # FX tracing fails in many ways on arbitrary user models
            result = _dynamic(model, False, device)
            result.info["scope"] = f"linear layers only: static quantization of the convolutions failed ({error})"
    result.info["int8_layers"] = count_int8_layers(result.module)
    return result
