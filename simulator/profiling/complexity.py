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


# torch counts the CUDA attention kernels but not the CPU one; count it the same way.
_EXTRA_FORMULAS = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _cpu_attention_flops}


def count_parameters(model: nn.Module) -> int:
    """Number of weights and biases of a float model."""
    return sum(parameter.numel() for parameter in model.parameters())


def count_flops(model: nn.Module, example: torch.Tensor | tuple[torch.Tensor, ...]) -> int:
    """FLOPs (multiply and add counted separately) of one forward call on ``example``."""
    inputs = example if isinstance(example, tuple) else (example,)
    with FlopCounterMode(display=False, custom_mapping=_EXTRA_FORMULAS) as counter, torch.inference_mode():
        model(*inputs)
    return int(counter.get_total_flops())
