"""Production-size architectures of the zoo, written in plain torch (no torchvision, no hub weights).

``BottleneckResNet`` is torchvision's ResNet-50 (v1.5: the stride sits in the 3x3 convolution),
``MobileNetV3`` torchvision's MobileNetV3-Large / -Small (inverted residuals with squeeze-and-
excitation and hardswish), and ``LSTMClassifier`` a stacked-LSTM text classifier. The BERT-base-size
encoder is the zoo's :class:`~simulator.profiling.zoo.TransformerClassifier` at BERT-base widths.
Like the zoo's small models, every prunable width is a constructor argument (kept in
``arguments``), so a structurally pruned model is the same class with smaller widths.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

RESNET50_LAYERS = [3, 4, 6, 3]
RESNET_PLANES = [64, 128, 256, 512]
BOTTLENECK_EXPANSION = 4


def bottleneck_widths(layers: Sequence[int], planes: Sequence[int]) -> list[list[int]]:
    """The unpruned inner widths [after conv1, after conv2] of every bottleneck block."""
    return [[p, p] for blocks, p in zip(layers, planes) for _ in range(blocks)]


def residual_shortcut(in_channels: int, out_channels: int, stride: int) -> nn.Module:
    """A residual block's shortcut: the identity, or a strided 1x1 projection where the shape changes."""
    if stride == 1 and in_channels == out_channels:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels))


class Bottleneck(nn.Module):
    """A ResNet bottleneck: 1x1 (in → w1), 3x3 with the stride (w1 → w2), 1x1 (w2 → out), plus the shortcut."""

    def __init__(self, in_channels: int, widths: Sequence[int], out_channels: int, stride: int) -> None:
        super().__init__()
        first, second = widths
        self.conv1 = nn.Conv2d(in_channels, first, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(first)
        self.conv2 = nn.Conv2d(first, second, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(second)
        self.conv3 = nn.Conv2d(second, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.downsample = residual_shortcut(in_channels, out_channels, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return F.relu(y + self.downsample(x))


class BottleneckResNet(nn.Module):
    """torchvision's bottleneck ResNet: 7x7 stem and max pool, four stages of bottleneck blocks
    (``layers`` blocks each, stride 2 from the second stage), global average pooling, a linear head.
    ``layers=[3, 4, 6, 3]`` at 1000 classes is ResNet-50 (25,557,032 parameters)."""

    def __init__(
        self,
        layers: Sequence[int],
        planes: Sequence[int],
        classes: int,
        widths: Sequence[Sequence[int]] | None = None,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        widths = [list(w) for w in widths] if widths is not None else bottleneck_widths(layers, planes)
        if len(widths) != sum(layers):
            raise ValueError(f"one [w1, w2] pair per bottleneck block: {sum(layers)} blocks, {len(widths)} pairs")
        self.arguments = dict(
            layers=list(layers), planes=list(planes), classes=classes, widths=widths, in_channels=in_channels
        )
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, planes[0], 7, 2, 3, bias=False),
            nn.BatchNorm2d(planes[0]),
            nn.ReLU(),
            nn.MaxPool2d(3, 2, 1),
        )
        blocks, channels, index = [], planes[0], 0
        for stage, (count, plane) in enumerate(zip(layers, planes)):
            for block in range(count):
                stride = 2 if stage > 0 and block == 0 else 1
                out = plane * BOTTLENECK_EXPANSION
                blocks.append(Bottleneck(channels, widths[index], out, stride))
                channels, index = out, index + 1
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(channels, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.stem(x))
        return self.head(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def make_divisible(value: float, divisor: int = 8) -> int:
    """torchvision's channel rounding: the nearest multiple of ``divisor``, never more than 10 % below."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


# torchvision's tables: kernel, expanded channels, output channels, squeeze-and-excitation, activation, stride
MOBILENETV3_LARGE_TABLE = (
    (3, 16, 16, False, "RE", 1),
    (3, 64, 24, False, "RE", 2),
    (3, 72, 24, False, "RE", 1),
    (5, 72, 40, True, "RE", 2),
    (5, 120, 40, True, "RE", 1),
    (5, 120, 40, True, "RE", 1),
    (3, 240, 80, False, "HS", 2),
    (3, 200, 80, False, "HS", 1),
    (3, 184, 80, False, "HS", 1),
    (3, 184, 80, False, "HS", 1),
    (3, 480, 112, True, "HS", 1),
    (3, 672, 112, True, "HS", 1),
    (5, 672, 160, True, "HS", 2),
    (5, 960, 160, True, "HS", 1),
    (5, 960, 160, True, "HS", 1),
)
MOBILENETV3_SMALL_TABLE = (
    (3, 16, 16, True, "RE", 2),
    (3, 72, 24, False, "RE", 2),
    (3, 88, 24, False, "RE", 1),
    (5, 96, 40, True, "HS", 2),
    (5, 240, 40, True, "HS", 1),
    (5, 240, 40, True, "HS", 1),
    (5, 120, 48, True, "HS", 1),
    (5, 144, 48, True, "HS", 1),
    (5, 288, 96, True, "HS", 2),
    (5, 576, 96, True, "HS", 1),
    (5, 576, 96, True, "HS", 1),
)
MOBILENETV3_STEM = 16


def mobilenetv3_size(
    table: Sequence[tuple[int, int, int, bool, str, int]], last_channels: int, classes: int, width: float = 1.0
) -> dict[str, Any]:
    """:class:`MobileNetV3` arguments for one of torchvision's tables at width multiplier ``width``.

    Each block says whether it has a 1x1 expansion (its expanded width differs from its input, as
    in torchvision) and its squeeze width, so that pruning the expanded channels keeps both.
    """
    blocks, channels = [], make_divisible(MOBILENETV3_STEM * width)
    for kernel, expanded, out, se, activation, stride in table:
        expanded, out = make_divisible(expanded * width), make_divisible(out * width)
        squeeze = make_divisible(expanded // 4) if se else 0
        blocks.append(
            dict(
                kernel=kernel,
                expanded=expanded,
                expand=expanded != channels,
                squeeze=squeeze,
                out=out,
                activation=activation,
                stride=stride,
            )
        )
        channels = out
    return dict(
        blocks=blocks,
        last_channels=make_divisible(last_channels * width),
        classes=classes,
        stem=make_divisible(MOBILENETV3_STEM * width),
    )


def _conv_bn(in_channels: int, out: int, kernel: int, stride: int = 1, groups: int = 1) -> list[nn.Module]:
    conv = nn.Conv2d(in_channels, out, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False)
    return [conv, nn.BatchNorm2d(out, eps=0.001, momentum=0.01)]


def _activation(name: str) -> nn.Module:
    return nn.Hardswish() if name == "HS" else nn.ReLU()


class SqueezeExcitation(nn.Module):
    """Channel attention: pooled channels → ``squeeze`` (ReLU) → channels (hardsigmoid) scale the input."""

    def __init__(self, channels: int, squeeze: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = F.hardsigmoid(self.fc2(F.relu(self.fc1(F.adaptive_avg_pool2d(x, 1)))))
        return x * scale


class InvertedResidual(nn.Module):
    """MobileNetV3's block: optional 1x1 expansion, depthwise k x k, optional SE, 1x1 projection."""

    def __init__(self, in_channels: int, spec: Mapping[str, Any]) -> None:
        super().__init__()
        expanded, out = spec["expanded"], spec["out"]
        self.residual = spec["stride"] == 1 and in_channels == out
        self.expand = (
            nn.Sequential(*_conv_bn(in_channels, expanded, 1), _activation(spec["activation"]))
            if spec["expand"]
            else nn.Identity()
        )
        self.depthwise = nn.Sequential(
            *_conv_bn(expanded, expanded, spec["kernel"], spec["stride"], groups=expanded),
            _activation(spec["activation"]),
        )
        self.se = SqueezeExcitation(expanded, spec["squeeze"]) if spec["squeeze"] else nn.Identity()
        self.project = nn.Sequential(*_conv_bn(expanded, out, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.se(self.depthwise(self.expand(x))))
        return x + y if self.residual else y


class MobileNetV3(nn.Module):
    """torchvision's MobileNetV3: a 3x3 stem, inverted-residual ``blocks``, a 1x1 conv to 6x the last
    width, pooling, and a two-layer head (hardswish, dropout 0.2). ``mobilenetv3_size`` gives the
    arguments: MobileNetV3-Large (last 1280, 1000 classes) has 5,483,032 parameters, -Small (last
    1024) 2,542,856."""

    def __init__(
        self,
        blocks: Sequence[Mapping[str, Any]],
        last_channels: int,
        classes: int,
        stem: int = MOBILENETV3_STEM,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        self.arguments = dict(
            blocks=[dict(b) for b in blocks],
            last_channels=last_channels,
            classes=classes,
            stem=stem,
            in_channels=in_channels,
        )
        self.stem = nn.Sequential(*_conv_bn(in_channels, stem, 3, 2), nn.Hardswish())
        layers, channels = [], stem
        for spec in blocks:
            layers.append(InvertedResidual(channels, spec))
            channels = spec["out"]
        self.blocks = nn.Sequential(*layers)
        self.last = nn.Sequential(*_conv_bn(channels, 6 * channels, 1), nn.Hardswish())
        self.classifier = nn.Sequential(
            nn.Linear(6 * channels, last_channels), nn.Hardswish(), nn.Dropout(0.2), nn.Linear(last_channels, classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.last(self.blocks(self.stem(x)))
        return self.classifier(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class LSTMClassifier(nn.Module):
    """A recurrent text classifier: token embeddings → stacked LSTM layers (one module per layer, so
    each layer's hidden width can be pruned) → mean over time → class logits."""

    def __init__(self, vocab: int, seq_len: int, embedding: int, hidden: Sequence[int], classes: int) -> None:
        super().__init__()
        self.arguments = dict(vocab=vocab, seq_len=seq_len, embedding=embedding, hidden=list(hidden), classes=classes)
        self.tokens = nn.Embedding(vocab, embedding)
        widths = [embedding, *hidden]
        self.layers = nn.ModuleList(nn.LSTM(a, b, batch_first=True) for a, b in zip(widths, widths[1:]))
        self.head = nn.Linear(widths[-1], classes)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.tokens(tokens)
        for layer in self.layers:
            x, _ = layer(x)
        return self.head(x.mean(dim=1))
