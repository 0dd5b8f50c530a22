"""What the timing harness serves: a model variant on a device plus the request path around it.

A request arrives as numpy arrays (as a server decodes them), is turned into tensors (``prepare``),
runs through the model, and its output is turned back into plain Python (``postprocess``). The
harness times the parts around the model separately from the model itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

Payload = tuple[np.ndarray, ...]


@dataclass(frozen=True)
class RequestCodec:
    """How payloads are made, decoded into input tensors, and how outputs are encoded as answers."""

    make_payload: Callable[[int, np.random.Generator], Payload]
    prepare: Callable[[Payload, torch.dtype], tuple[torch.Tensor, ...]]
    postprocess: Callable[[Any], Any]


@dataclass
class Servable:
    """One model variant ready to serve on ``device``; ``info`` becomes its bundle metadata entry."""

    family: str
    variant: str
    device: torch.device
    dtype: torch.dtype
    module: Callable[..., Any]
    codec: RequestCodec
    cold_load: Callable[[], Callable[..., Any]] | None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def dtype_name(self) -> str:
        """The variant's number format (``int8`` for a quantized model fed float32 inputs)."""
        return self.info.get("dtype") or str(self.dtype).removeprefix("torch.")


def classifier_answer(logits: torch.Tensor) -> list[tuple[int, float]]:
    """A classifier's answer per row: (top-1 class, its probability)."""
    top = torch.softmax(logits.float(), dim=-1).max(dim=-1)
    return list(zip(top.indices.tolist(), top.values.tolist()))


def arrays_answer(output: Any) -> Any:
    """Any model's output as numpy arrays, structure kept (for models whose answer format is unknown)."""
    if isinstance(output, torch.Tensor):
        return output.detach().float().numpy() if output.is_floating_point() else output.detach().numpy()
    if isinstance(output, (tuple, list)):
        return type(output)(arrays_answer(item) for item in output)
    if isinstance(output, dict):
        return {key: arrays_answer(value) for key, value in output.items()}
    return output


def to_device(value: Any, device: torch.device) -> Any:
    """Move every tensor of a (nested) model output to ``device``."""
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, (tuple, list)):
        return type(value)(to_device(item, device) for item in value)
    if isinstance(value, dict):
        return {key: to_device(item, device) for key, item in value.items()}
    return value
