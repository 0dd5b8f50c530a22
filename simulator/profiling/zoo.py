"""The kernel zoo: model families built from torch.nn (no hub weights).

Three small families are trained in seconds on their synthetic tasks; the production-size ones
(ResNet-50, MobileNetV3-Large/-Small, a BERT-base-size encoder, see
:mod:`simulator.profiling.production`) are randomly initialised and scored on generated inputs by
their agreement with their fp32 outputs, except the LSTM, which is small enough to train.

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
from simulator.profiling.production import (
    MOBILENETV3_LARGE_TABLE,
    MOBILENETV3_SMALL_TABLE,
    RESNET50_LAYERS,
    RESNET_PLANES,
    BottleneckResNet,
    LSTMClassifier,
    MobileNetV3,
    mobilenetv3_size,
    residual_shortcut,
)
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
        self.shortcut = residual_shortcut(in_channels, out_channels, stride)

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
    """One model family of the zoo: architecture, teacher/student sizes, task and input decoding.

    A family without ``teacher_training`` keeps its teacher randomly initialised (seeded): its task
    only generates inputs, and its variants are scored by their agreement with the fp32 teacher.
    """

    name: str
    description: str
    architecture: type[nn.Module]
    teacher: Mapping[str, Any]
    student: Mapping[str, Any]
    make_task: Callable[[int], tasks.Task]
    prepare: Callable[[np.ndarray, torch.dtype], torch.Tensor]
    teacher_training: TrainingPlan | None
    student_training: TrainingPlan
    calibration_rows: int = 64

    def build(self, size: Mapping[str, Any]) -> nn.Module:
        return self.architecture(**size)

    @property
    def trained(self) -> bool:
        """Whether the teacher is trained on the task's labels (else its accuracy means nothing)."""
        return self.teacher_training is not None

    @property
    def finetune_training(self) -> TrainingPlan:
        """Recovery training of a pruned teacher: a third of the teacher's steps at a third of its rate;
        for an untrained teacher, the student's distillation plan."""
        plan = self.teacher_training
        if plan is None:
            return self.student_training
        return TrainingPlan(max(plan.steps // 3, 1), plan.batch_size, plan.learning_rate / 3)


FAMILY_NAMES = ("mlp", "cnn", "transformer")
PRODUCTION_FAMILY_NAMES = ("resnet50", "mobilenetv3-large", "mobilenetv3-small", "bert-base", "lstm")
ALL_FAMILY_NAMES = FAMILY_NAMES + PRODUCTION_FAMILY_NAMES

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
        "resnet50": dict(
            teacher=dict(layers=RESNET50_LAYERS, planes=RESNET_PLANES, classes=1000),
            student=dict(layers=[2, 2, 2, 2], planes=[32, 64, 128, 256], classes=1000),
            student_training=TrainingPlan(16, 8, 1e-3),
        ),
        "mobilenetv3-large": dict(
            teacher=mobilenetv3_size(MOBILENETV3_LARGE_TABLE, 1280, 1000),
            student=mobilenetv3_size(MOBILENETV3_SMALL_TABLE, 1024, 1000),
            student_training=TrainingPlan(24, 16, 1e-3),
        ),
        "mobilenetv3-small": dict(
            teacher=mobilenetv3_size(MOBILENETV3_SMALL_TABLE, 1024, 1000),
            student=mobilenetv3_size(MOBILENETV3_SMALL_TABLE, 1024, 1000, width=0.5),
            student_training=TrainingPlan(24, 16, 1e-3),
        ),
        "bert-base": dict(
            teacher=dict(vocab=30522, d_model=768, head_dim=64, heads=[12] * 12, ff=[3072] * 12, classes=8),
            student=dict(vocab=30522, d_model=768, head_dim=64, heads=[12] * 6, ff=[3072] * 6, classes=8),
            student_training=TrainingPlan(8, 4, 1e-4),
        ),
        "lstm": dict(
            teacher=dict(vocab=8000, embedding=128, hidden=[256, 256], classes=8),
            student=dict(vocab=8000, embedding=64, hidden=[128], classes=8),
            teacher_training=TrainingPlan(40, 32, 3e-3),
            student_training=TrainingPlan(60, 32, 1e-2),
        ),
        "recurrent_task": dict(n_train=2048, n_test=256),
        "generated": dict(n_train=128, n_test=64, image_size=224, calibration_rows=16),
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
        "resnet50": dict(
            teacher=dict(layers=[1, 1, 1, 1], planes=[4, 8, 16, 32], classes=10),
            student=dict(layers=[1, 1, 1, 1], planes=[2, 4, 8, 16], classes=10),
            student_training=TrainingPlan(5, 8, 1e-3),
        ),
        "mobilenetv3-large": dict(
            teacher=mobilenetv3_size(MOBILENETV3_LARGE_TABLE, 1280, 10, width=0.25),
            student=mobilenetv3_size(MOBILENETV3_SMALL_TABLE, 1024, 10, width=0.25),
            student_training=TrainingPlan(5, 8, 1e-3),
        ),
        "mobilenetv3-small": dict(
            teacher=mobilenetv3_size(MOBILENETV3_SMALL_TABLE, 1024, 10, width=0.25),
            student=mobilenetv3_size(MOBILENETV3_SMALL_TABLE, 1024, 10, width=0.125),
            student_training=TrainingPlan(5, 8, 1e-3),
        ),
        "bert-base": dict(
            teacher=dict(vocab=64, d_model=32, head_dim=8, heads=[4, 4], ff=[64, 64], classes=4),
            student=dict(vocab=64, d_model=32, head_dim=8, heads=[4], ff=[64], classes=4),
            student_training=TrainingPlan(5, 8, 1e-3),
        ),
        "lstm": dict(
            teacher=dict(vocab=64, embedding=16, hidden=[32, 32], classes=4),
            student=dict(vocab=64, embedding=8, hidden=[8], classes=4),
            teacher_training=TrainingPlan(30, 16, 1e-2),
            student_training=TrainingPlan(30, 16, 1e-2),
        ),
        "recurrent_task": dict(n_train=512, n_test=256),
        "generated": dict(n_train=64, n_test=32, image_size=32, calibration_rows=8),
    },
}


def _with_seq_len(family_sizes: Mapping[str, Any], seq_len: int) -> dict[str, Any]:
    """A sequence family's sizes with the teacher and student built for ``seq_len`` tokens."""
    return {
        key: value | {"seq_len": seq_len} if key in ("teacher", "student") else value
        for key, value in family_sizes.items()
    }


def _production(sizes: Mapping[str, Any], seq_len: int) -> dict[str, Family]:
    """The production-size families: randomly initialised except the LSTM, which trains on the motif task."""
    generated = sizes["generated"]
    rows = dict(n_train=generated["n_train"], n_test=generated["n_test"])
    image_size = generated["image_size"]
    untrained = dict(teacher_training=None, calibration_rows=generated["calibration_rows"])
    bert, lstm = _with_seq_len(sizes["bert-base"], seq_len), _with_seq_len(sizes["lstm"], seq_len)
    images = f"{image_size}x{image_size} RGB"

    def image_inputs(seed: int) -> tasks.Task:
        return tasks.image_patterns(seed, 8, size=image_size, **rows)

    def bert_inputs(seed: int) -> tasks.Task:
        return tasks.token_motifs(seed, bert["teacher"]["vocab"], seq_len, bert["teacher"]["classes"], **rows)

    def lstm_task(seed: int) -> tasks.Task:
        teacher = lstm["teacher"]
        return tasks.token_motifs(seed, teacher["vocab"], seq_len, teacher["classes"], **sizes["recurrent_task"])

    def image_family(name: str, model: str, architecture: type) -> Family:
        return Family(
            name=name, description=f"{model}, randomly initialised, on {images} generated images", architecture=architecture,
            make_task=image_inputs, prepare=_images, **sizes[name], **untrained,
        )

    return {
        "resnet50": image_family("resnet50", "ResNet-50 (torchvision's bottleneck stack [3, 4, 6, 3])", BottleneckResNet),
        "mobilenetv3-large": image_family("mobilenetv3-large", "MobileNetV3-Large (torchvision's)", MobileNetV3),
        "mobilenetv3-small": image_family("mobilenetv3-small", "MobileNetV3-Small (torchvision's)", MobileNetV3),
        "bert-base": Family(
            name="bert-base",
            description=f"BERT-base-size encoder (12 layers, d=768, 12 heads, FFN 3072), randomly initialised, "
            f"on {seq_len}-token generated sequences",
            architecture=TransformerClassifier,
            make_task=bert_inputs,
            prepare=_token_ids,
            **bert,
            **untrained,
        ),
        "lstm": Family(
            name="lstm",
            description=f"stacked-LSTM text classifier over {seq_len}-token sequences (motif task)",
            architecture=LSTMClassifier,
            make_task=lstm_task,
            prepare=_token_ids,
            **lstm,
        ),
    }


def zoo(seq_len: int = 64, size: str = "standard") -> dict[str, Family]:
    """The zoo's families at ``size`` "standard" (profiled) or "tiny" (the same families as toys, for tests)."""
    sizes = _SIZES[size]
    mlp, cnn, task_size = sizes["mlp"], sizes["cnn"], sizes["task"]
    transformer = _with_seq_len(sizes["transformer"], seq_len)
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
    } | _production(sizes, seq_len)
