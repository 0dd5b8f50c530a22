"""The kernel zoo: three model families built from torch.nn (no hub weights).

Every architecture takes its prunable widths as per-layer lists, so a structurally pruned model
is the same class with smaller lists (see :mod:`simulator.profiling.pruning`), and keeps its
constructor ``arguments`` so that an empty copy can be rebuilt for a cold start. A :class:`Family`
ties an architecture to its teacher and student sizes, its synthetic task and the way a request
payload (numpy, as a server decodes it) becomes an input tensor.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from simulator.profiling import tasks
from simulator.profiling.training import TrainingPlan


class TabularMLP(nn.Module):
    """A tabular / recommender-style MLP: dense features → hidden ReLU layers → class logits."""

    def __init__(self, features: int, hidden: Sequence[int], classes: int) -> None:
        super().__init__()
        self.arguments = dict(features=features, hidden=list(hidden), classes=classes)
        widths = [features, *hidden]
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths, widths[1:]))
        self.head = nn.Linear(widths[-1], classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.hidden:
            x = F.relu(layer(x))
        return self.head(x)


class ResidualBlock(nn.Module):
    """A ResNet basic block whose inner width ``mid`` can be pruned without touching the residual."""

    def __init__(self, in_channels: int, mid: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, mid, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.conv2 = nn.Conv2d(mid, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + self.shortcut(x))


class ResNetClassifier(nn.Module):
    """A small ResNet image classifier: a stem, one residual block per stage (stride 2 after the
    first), global average pooling and a linear head."""

    def __init__(self, widths: Sequence[int], mids: Sequence[int], classes: int, in_channels: int = 3) -> None:
        super().__init__()
        self.arguments = dict(widths=list(widths), mids=list(mids), classes=classes, in_channels=in_channels)
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU()
        )
        ins = [widths[0], *widths[:-1]]
        self.blocks = nn.Sequential(
            *(ResidualBlock(i, m, o, 1 if index == 0 else 2) for index, (i, m, o) in enumerate(zip(ins, mids, widths)))
        )
        self.head = nn.Linear(widths[-1], classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.stem(x))
        return self.head(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class EncoderLayer(nn.Module):
    """A pre-norm transformer encoder layer with separate q/k/v/o projections, so whole attention
    heads and feed-forward neurons can be pruned."""

    def __init__(self, d_model: int, heads: int, head_dim: int, ff: int) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, head_dim
        inner = heads * head_dim
        self.norm1 = nn.LayerNorm(d_model)
        self.q, self.k, self.v = (nn.Linear(d_model, inner) for _ in range(3))
        self.o = nn.Linear(inner, d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.ff1 = nn.Linear(d_model, ff)
        self.ff2 = nn.Linear(ff, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, _ = x.shape
        h = self.norm1(x)
        q, k, v = (
            proj(h).view(batch, length, self.heads, self.head_dim).transpose(1, 2) for proj in (self.q, self.k, self.v)
        )
        attended = F.scaled_dot_product_attention(q, k, v)
        x = x + self.o(attended.transpose(1, 2).reshape(batch, length, self.heads * self.head_dim))
        return x + self.ff2(F.gelu(self.ff1(self.norm2(x))))


class TransformerClassifier(nn.Module):
    """A transformer-encoder text classifier over token ids of a fixed sequence length."""

    def __init__(
        self,
        vocab: int,
        seq_len: int,
        d_model: int,
        head_dim: int,
        heads: Sequence[int],
        ff: Sequence[int],
        classes: int,
    ) -> None:
        super().__init__()
        self.arguments = dict(
            vocab=vocab,
            seq_len=seq_len,
            d_model=d_model,
            head_dim=head_dim,
            heads=list(heads),
            ff=list(ff),
            classes=classes,
        )
        self.tokens = nn.Embedding(vocab, d_model)
        self.positions = nn.Embedding(seq_len, d_model)
        self.layers = nn.ModuleList(EncoderLayer(d_model, h, head_dim, f) for h, f in zip(heads, ff))
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, classes)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(tokens.shape[1], device=tokens.device)
        x = self.tokens(tokens) + self.positions(positions)
        for layer in self.layers:
            x = layer(x)
        return self.head(self.norm(x).mean(dim=1))


def _float_features(payload: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    return torch.from_numpy(payload).to(dtype)


def _images(payload: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    """uint8 NHWC images (as decoded from a request) → normalised NCHW tensor."""
    x = torch.from_numpy(payload).permute(0, 3, 1, 2).to(torch.float32)
    return ((x - 127.5) / 64.0).to(dtype).contiguous()


def _token_ids(payload: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    return torch.from_numpy(payload)


@dataclass(frozen=True)
class Family:
    """One model family of the zoo: architecture, teacher/student sizes, task and input decoding."""

    name: str
    description: str
    architecture: type[nn.Module]
    teacher: Mapping[str, Any]
    student: Mapping[str, Any]
    make_task: Callable[[int], tasks.Task]
    prepare: Callable[[np.ndarray, torch.dtype], torch.Tensor]
    teacher_training: TrainingPlan
    student_training: TrainingPlan

    def build(self, size: Mapping[str, Any]) -> nn.Module:
        return self.architecture(**size)

    @property
    def finetune_training(self) -> TrainingPlan:
        """Recovery training of a pruned teacher: a third of the teacher's steps at a third of its rate."""
        plan = self.teacher_training
        return TrainingPlan(max(plan.steps // 3, 1), plan.batch_size, plan.learning_rate / 3)


FAMILY_NAMES = ("mlp", "cnn", "transformer")

_SIZES: dict[str, dict[str, dict[str, Any]]] = {
    "standard": {
        "mlp": dict(
            teacher=dict(features=64, hidden=[512, 512, 256], classes=8),
            student=dict(features=64, hidden=[64, 64], classes=8),
            teacher_training=TrainingPlan(200, 64, 3e-3),
            student_training=TrainingPlan(200, 64, 1e-2),
        ),
        "cnn": dict(
            teacher=dict(widths=[16, 32, 64], mids=[16, 32, 64], classes=8),
            student=dict(widths=[8, 16, 32], mids=[8, 16, 32], classes=8),
            teacher_training=TrainingPlan(60, 32, 5e-3),
            student_training=TrainingPlan(100, 32, 1e-2),
        ),
        "transformer": dict(
            teacher=dict(vocab=512, d_model=128, head_dim=32, heads=[4, 4], ff=[512, 512], classes=8),
            student=dict(vocab=512, d_model=64, head_dim=32, heads=[2], ff=[128], classes=8),
            teacher_training=TrainingPlan(60, 32, 3e-3),
            student_training=TrainingPlan(100, 32, 1e-2),
        ),
        "task": dict(n_train=4096, n_test=1024),
    },
    "tiny": {
        "mlp": dict(
            teacher=dict(features=16, hidden=[64, 64], classes=4),
            student=dict(features=16, hidden=[16], classes=4),
            teacher_training=TrainingPlan(60, 32, 1e-2),
            student_training=TrainingPlan(60, 32, 1e-2),
        ),
        "cnn": dict(
            teacher=dict(widths=[8, 16], mids=[8, 16], classes=4),
            student=dict(widths=[4, 8], mids=[4, 8], classes=4),
            teacher_training=TrainingPlan(15, 16, 1e-2),
            student_training=TrainingPlan(15, 16, 1e-2),
        ),
        "transformer": dict(
            teacher=dict(vocab=64, d_model=32, head_dim=8, heads=[4], ff=[64], classes=4),
            student=dict(vocab=64, d_model=16, head_dim=8, heads=[2], ff=[16], classes=4),
            teacher_training=TrainingPlan(30, 16, 1e-2),
            student_training=TrainingPlan(30, 16, 1e-2),
        ),
        "task": dict(n_train=512, n_test=256),
    },
}


def zoo(seq_len: int = 64, size: str = "standard") -> dict[str, Family]:
    """The zoo's families at ``size`` "standard" (profiled) or "tiny" (the same families as toys, for tests)."""
    sizes = _SIZES[size]
    mlp, cnn, transformer, task_size = sizes["mlp"], sizes["cnn"], sizes["transformer"], sizes["task"]
    for key in ("teacher", "student"):
        transformer = transformer | {key: transformer[key] | {"seq_len": seq_len}}
    mlp_teacher, cnn_teacher, transformer_teacher = mlp["teacher"], cnn["teacher"], transformer["teacher"]
    return {
        "mlp": Family(
            name="mlp",
            description="tabular MLP classifier on dense features (Gaussian-cluster task)",
            architecture=TabularMLP,
            make_task=lambda seed: tasks.gaussian_clusters(
                seed, mlp_teacher["features"], mlp_teacher["classes"], **task_size
            ),
            prepare=_float_features,
            **mlp,
        ),
        "cnn": Family(
            name="cnn",
            description="ResNet-style image classifier on 32x32 RGB images (oriented-grating task)",
            architecture=ResNetClassifier,
            make_task=lambda seed: tasks.image_patterns(seed, cnn_teacher["classes"], **task_size),
            prepare=_images,
            **cnn,
        ),
        "transformer": Family(
            name="transformer",
            description=f"transformer-encoder text classifier over {seq_len}-token sequences (motif task)",
            architecture=TransformerClassifier,
            make_task=lambda seed: tasks.token_motifs(
                seed, transformer_teacher["vocab"], seq_len, transformer_teacher["classes"], **task_size
            ),
            prepare=_token_ids,
            **transformer,
        ),
    }
