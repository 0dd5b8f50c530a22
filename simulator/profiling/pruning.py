"""Structured pruning that really removes work: a smaller model of the same class is built and the
kept channels / neurons / heads (largest L1 norm of their weights) are copied into it.

Masking weights to zero (torch.nn.utils.prune) would leave the dense kernels, and so the latency,
unchanged; physically smaller layers make the FLOPs, the parameter count and the time drop.
"""

from __future__ import annotations

from functools import singledispatch

import torch
from torch import nn

from simulator.profiling.production import BottleneckResNet, LSTMClassifier, MobileNetV3
from simulator.profiling.zoo import ResNetClassifier, TabularMLP, TransformerClassifier

BATCH_NORM_TENSORS = ("weight", "bias", "running_mean", "running_var")


def _kept(scores: torch.Tensor, keep_fraction: float) -> torch.Tensor:
    """Indices (ascending) of the ``keep_fraction`` highest scores, at least one."""
    count = max(1, round(len(scores) * keep_fraction))
    return torch.sort(torch.topk(scores, count).indices).values


def _l1_rows(weight: torch.Tensor) -> torch.Tensor:
    """L1 norm of each output unit's weights (dim 0), over every other dim."""
    return weight.detach().abs().flatten(1).sum(dim=1)


def _keep_batch_norm(state: dict[str, torch.Tensor], prefix: str, kept: torch.Tensor) -> None:
    """Keep the ``kept`` channels of the batch norm at ``prefix`` in a state dict."""
    for name in BATCH_NORM_TENSORS:
        state[f"{prefix}.{name}"] = state[f"{prefix}.{name}"][kept]


@singledispatch
def prune(model: nn.Module, keep_fraction: float = 0.5) -> nn.Module:
    """A smaller copy of ``model`` keeping ``keep_fraction`` of its prunable units."""
    raise TypeError(f"no structured pruning is defined for {type(model).__name__}")


@prune.register
def _(model: TabularMLP, keep_fraction: float = 0.5) -> TabularMLP:
    state = model.state_dict()
    kept = [_kept(_l1_rows(layer.weight), keep_fraction) for layer in model.hidden]
    features = model.hidden[0].in_features
    smaller = TabularMLP(features, [len(k) for k in kept], model.head.out_features)
    inputs = torch.arange(features)
    for index, rows in enumerate(kept):
        prefix = f"hidden.{index}"
        state[f"{prefix}.weight"] = state[f"{prefix}.weight"][rows][:, inputs]
        state[f"{prefix}.bias"] = state[f"{prefix}.bias"][rows]
        inputs = rows
    state["head.weight"] = state["head.weight"][:, inputs]
    smaller.load_state_dict(state)
    return smaller.eval()


@prune.register
def _(model: ResNetClassifier, keep_fraction: float = 0.5) -> ResNetClassifier:
    """Prunes the inner channels of every residual block (conv1's filters, bn1, conv2's inputs)."""
    state = model.state_dict()
    mids = []
    for index, block in enumerate(model.blocks):
        kept = _kept(_l1_rows(block.conv1.weight), keep_fraction)
        prefix = f"blocks.{index}"
        state[f"{prefix}.conv1.weight"] = state[f"{prefix}.conv1.weight"][kept]
        _keep_batch_norm(state, f"{prefix}.bn1", kept)
        state[f"{prefix}.conv2.weight"] = state[f"{prefix}.conv2.weight"][:, kept]
        mids.append(len(kept))
    widths = [block.conv2.out_channels for block in model.blocks]
    smaller = ResNetClassifier(widths, mids, model.head.out_features, model.stem[0].in_channels)
    smaller.load_state_dict(state)
    return smaller.eval()


@prune.register
def _(model: TransformerClassifier, keep_fraction: float = 0.5) -> TransformerClassifier:
    """Prunes whole attention heads (L1 of their q/k/v rows and o columns) and feed-forward neurons."""
    state = model.state_dict()
    heads, ffs = [], []
    for index, layer in enumerate(model.layers):
        prefix = f"layers.{index}"
        per_head = [
            _l1_rows(proj.weight).view(layer.heads, layer.head_dim).sum(dim=1) for proj in (layer.q, layer.k, layer.v)
        ]
        per_head.append(layer.o.weight.detach().abs().sum(dim=0).view(layer.heads, layer.head_dim).sum(dim=1))
        kept_heads = _kept(torch.stack(per_head).sum(dim=0), keep_fraction)
        columns = (kept_heads[:, None] * layer.head_dim + torch.arange(layer.head_dim)).flatten()
        for name in ("q", "k", "v"):
            state[f"{prefix}.{name}.weight"] = state[f"{prefix}.{name}.weight"][columns]
            state[f"{prefix}.{name}.bias"] = state[f"{prefix}.{name}.bias"][columns]
        state[f"{prefix}.o.weight"] = state[f"{prefix}.o.weight"][:, columns]
        neurons = _kept(_l1_rows(layer.ff1.weight), keep_fraction)
        state[f"{prefix}.ff1.weight"] = state[f"{prefix}.ff1.weight"][neurons]
        state[f"{prefix}.ff1.bias"] = state[f"{prefix}.ff1.bias"][neurons]
        state[f"{prefix}.ff2.weight"] = state[f"{prefix}.ff2.weight"][:, neurons]
        heads.append(len(kept_heads))
        ffs.append(len(neurons))
    first = model.layers[0]
    smaller = TransformerClassifier(
        vocab=model.tokens.num_embeddings,
        seq_len=model.positions.num_embeddings,
        d_model=model.tokens.embedding_dim,
        head_dim=first.head_dim,
        heads=heads,
        ff=ffs,
        classes=model.head.out_features,
    )
    smaller.load_state_dict(state)
    return smaller.eval()


@prune.register
def _(model: BottleneckResNet, keep_fraction: float = 0.5) -> BottleneckResNet:
    """Prunes both inner widths of every bottleneck (conv1's and conv2's filters); block outputs stay."""
    state = model.state_dict()
    widths = []
    for index, block in enumerate(model.blocks):
        prefix = f"blocks.{index}"
        first = _kept(_l1_rows(block.conv1.weight), keep_fraction)
        second = _kept(_l1_rows(block.conv2.weight), keep_fraction)
        state[f"{prefix}.conv1.weight"] = state[f"{prefix}.conv1.weight"][first]
        _keep_batch_norm(state, f"{prefix}.bn1", first)
        state[f"{prefix}.conv2.weight"] = state[f"{prefix}.conv2.weight"][second][:, first]
        _keep_batch_norm(state, f"{prefix}.bn2", second)
        state[f"{prefix}.conv3.weight"] = state[f"{prefix}.conv3.weight"][:, second]
        widths.append([len(first), len(second)])
    smaller = BottleneckResNet(**(model.arguments | {"widths": widths}))
    smaller.load_state_dict(state)
    return smaller.eval()


@prune.register
def _(model: MobileNetV3, keep_fraction: float = 0.5) -> MobileNetV3:
    """Prunes the expanded channels of every inverted residual that has a 1x1 expansion (its filters,
    the depthwise channels, the squeeze-and-excitation's inputs and outputs, the projection's inputs)."""
    state = model.state_dict()
    blocks = []
    for index, (block, spec) in enumerate(zip(model.blocks, model.arguments["blocks"])):
        if not spec["expand"]:
            blocks.append(spec)
            continue
        prefix = f"blocks.{index}"
        kept = _kept(_l1_rows(block.expand[0].weight), keep_fraction)
        state[f"{prefix}.expand.0.weight"] = state[f"{prefix}.expand.0.weight"][kept]
        _keep_batch_norm(state, f"{prefix}.expand.1", kept)
        state[f"{prefix}.depthwise.0.weight"] = state[f"{prefix}.depthwise.0.weight"][kept]
        _keep_batch_norm(state, f"{prefix}.depthwise.1", kept)
        if spec["squeeze"]:
            state[f"{prefix}.se.fc1.weight"] = state[f"{prefix}.se.fc1.weight"][:, kept]
            state[f"{prefix}.se.fc2.weight"] = state[f"{prefix}.se.fc2.weight"][kept]
            state[f"{prefix}.se.fc2.bias"] = state[f"{prefix}.se.fc2.bias"][kept]
        state[f"{prefix}.project.0.weight"] = state[f"{prefix}.project.0.weight"][:, kept]
        blocks.append(spec | {"expanded": len(kept)})
    smaller = MobileNetV3(**(model.arguments | {"blocks": blocks}))
    smaller.load_state_dict(state)
    return smaller.eval()


def _lstm_unit_norms(weight: torch.Tensor, hidden_size: int) -> torch.Tensor:
    """L1 norm of each hidden unit's rows over the four gates (torch stacks them as i, f, g, o)."""
    return weight.detach().abs().view(4, hidden_size, -1).sum(dim=(0, 2))


@prune.register
def _(model: LSTMClassifier, keep_fraction: float = 0.5) -> LSTMClassifier:
    """Prunes hidden units of every LSTM layer (L1 of the unit's rows in all four gates, input and
    recurrent weights); the next layer's inputs and the head's columns follow."""
    state = model.state_dict()
    hidden, inputs = [], torch.arange(model.tokens.embedding_dim)
    for index, layer in enumerate(model.layers):
        prefix, size = f"layers.{index}", layer.hidden_size
        norms = _lstm_unit_norms(layer.weight_ih_l0, size) + _lstm_unit_norms(layer.weight_hh_l0, size)
        units = _kept(norms, keep_fraction)
        rows = (torch.arange(4)[:, None] * size + units).flatten()
        state[f"{prefix}.weight_ih_l0"] = state[f"{prefix}.weight_ih_l0"][rows][:, inputs]
        state[f"{prefix}.weight_hh_l0"] = state[f"{prefix}.weight_hh_l0"][rows][:, units]
        for name in ("bias_ih_l0", "bias_hh_l0"):
            state[f"{prefix}.{name}"] = state[f"{prefix}.{name}"][rows]
        hidden.append(len(units))
        inputs = units
    state["head.weight"] = state["head.weight"][:, inputs]
    smaller = LSTMClassifier(**(model.arguments | {"hidden": hidden}))
    smaller.load_state_dict(state)
    return smaller.eval()
