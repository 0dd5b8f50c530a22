"""How much work a model is: parameter count and FLOPs per sample (torch's FlopCounterMode).

FLOPs are counted on a float model; an int8 model does the same arithmetic in integers, so its
FLOPs are those of the float model it was quantized from (the bundle says so).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count


def _cpu_attention_flops(query_shape, key_shape, value_shape, *args: Any, out_shape: Any = None, **kwargs: Any) -> int:
    return sdpa_flop_count(query_shape, key_shape, value_shape)


def _lstm_flops(
    input_shape, hx_shapes, param_shapes, has_biases: bool, *args: Any, out_shape: Any = None, **kwargs: Any
) -> int:
    """The gates' matrix products of a fused LSTM: 2·(4H·I + 4H·H) per token, layer and direction
    (the elementwise gate arithmetic is not counted, as for other layers' activations)."""
    tokens = input_shape[0] * input_shape[1]
    per_layer = 4 if has_biases else 2
    weights = [shape for index, shape in enumerate(param_shapes) if index % per_layer < 2]
    return sum(2 * tokens * rows * columns for rows, columns in weights)


# torch counts the CUDA attention kernels but neither the CPU one nor the LSTM; count them too. The
# LSTM overload is listed so that the counter keeps it whole (it decomposes ops it has no formula
# for), the packet because the counter looks formulas up by packet.
_EXTRA_FORMULAS = {
    torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _cpu_attention_flops,
    torch.ops.aten.lstm.input: _lstm_flops,
    torch.ops.aten.lstm: _lstm_flops,
}


def count_parameters(model: nn.Module) -> int:
    """Number of weights and biases of a float model."""
    return sum(parameter.numel() for parameter in model.parameters())


def count_flops(model: nn.Module, example: torch.Tensor | tuple[torch.Tensor, ...]) -> int:
    """FLOPs (multiply and add counted separately) of one forward call on ``example``."""
    inputs = example if isinstance(example, tuple) else (example,)
    with FlopCounterMode(display=False, custom_mapping=_EXTRA_FORMULAS) as counter, torch.inference_mode():
        model(*inputs)
    return int(counter.get_total_flops())
