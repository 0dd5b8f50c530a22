"""From a zoo family to servable variants with a measured quality cost.

The teacher is trained on the family's synthetic task (a production-size family's stays randomly
initialised, its batch norms set to the statistics of the generated inputs); ``pruned`` is the
teacher structurally pruned to half its units and briefly fine-tuned (on the labels, or by
distillation from an untrained teacher); ``distilled`` is the family's smaller student trained
only on the teacher's soft outputs. Every variant is then scored on the held-out split (accuracy
where the teacher learnt the labels, and agreement with the fp32 teacher) and sized (parameters,
FLOPs, bytes on disk).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from simulator.profiling.complexity import count_flops, count_parameters
from simulator.profiling.pruning import prune
from simulator.profiling.quality import measure_quality, predict
from simulator.profiling.quantization import Int8Backend
from simulator.profiling.servable import (
    Payload,
    RequestCodec,
    Servable,
    classifier_answer,
)
from simulator.profiling.tasks import Task
from simulator.profiling.training import distill, estimate_batch_norm, train_classifier
from simulator.profiling.variants import (
    PRECISIONS,
    FloatModel,
    VariantUnavailable,
    cold_loader,
    convert,
)
from simulator.profiling.zoo import Family

PRUNE_KEEP_FRACTION = 0.5
CALIBRATION_BATCHES = 4


def _codec(family: Family, task: Task) -> RequestCodec:
    """Requests are rows of the held-out split, decoded the family's way; answers are (class, probability)."""

    def make_payload(batch_size: int, rng: np.random.Generator) -> Payload:
        return (task.test_x[rng.integers(0, len(task.test_x), batch_size)],)

    def prepare(payload: Payload, dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
        return (family.prepare(payload[0], dtype),)

    return RequestCodec(make_payload, prepare, classifier_answer)


def _float_model(module: nn.Module) -> FloatModel:
    architecture, arguments = type(module), module.arguments
    return FloatModel(module, lambda: architecture(**arguments).eval())


class _FamilyModels:
    """The float models of one family, trained once and shared by the variants built from them."""

    def __init__(self, family: Family, task: Task, seed: int, log: Callable[[str], None]) -> None:
        self.family, self.task, self.seed, self.log = family, task, seed, log
        if family.teacher_training is None:
            log(f"{family.name}: initialising the teacher (untrained) and its batch-norm statistics")
            torch.manual_seed(seed)
            self.teacher = family.build(family.teacher)
            self.teacher_training = estimate_batch_norm(self.teacher, task, family.prepare, family.calibration_rows)
        else:
            log(f"{family.name}: training the teacher")
            self.teacher = family.build(family.teacher)
            self.teacher_training = train_classifier(self.teacher, task, family.prepare, family.teacher_training, seed)
        self._derived: dict[str, tuple[nn.Module, dict[str, Any]]] = {}

    def source(self, variant: str) -> tuple[nn.Module, dict[str, Any]]:
        """The float model a variant is made from and the record of how it was trained."""
        if variant in PRECISIONS:
            return self.teacher, {"teacher": self.teacher_training}
        if variant not in self._derived:
            self._derived[variant] = self._pruned() if variant == "pruned" else self._distilled()
        return self._derived[variant]

    def _pruned(self) -> tuple[nn.Module, dict[str, Any]]:
        self.log(f"{self.family.name}: pruning and fine-tuning")
        pruned = prune(self.teacher, PRUNE_KEEP_FRACTION)
        plan, prepare = self.family.finetune_training, self.family.prepare
        if self.family.trained:
            finetune = train_classifier(pruned, self.task, prepare, plan, self.seed)
        else:
            finetune = distill(pruned, self.teacher, self.task, prepare, plan, self.seed)
        return pruned, {
            "teacher": self.teacher_training,
            "pruning": {"method": "structured, L1 norm of each unit's weights", "keep_fraction": PRUNE_KEEP_FRACTION},
            "finetune": finetune,
        }

    def _distilled(self) -> tuple[nn.Module, dict[str, Any]]:
        self.log(f"{self.family.name}: distilling the student")
        student = self.family.build(self.family.student)
        record = distill(student, self.teacher, self.task, self.family.prepare, self.family.student_training, self.seed)
        return student, {"teacher": self.teacher_training, "distillation": record}


def zoo_servables(
    family: Family,
    variants: Sequence[str],
    device: torch.device,
    workdir: Path,
    seed: int = 0,
    int8_backend: Int8Backend = "auto",
    log: Callable[[str], None] = lambda message: None,
) -> tuple[list[Servable], list[dict[str, str]]]:
    """The family's variants, ready to time on ``device``, and the ones skipped (with reasons)."""
    task = family.make_task(seed)
    models = _FamilyModels(family, task, seed, log)
    teacher_predictions = predict(models.teacher, task.test_x, family.prepare)
    codec = _codec(family, task)
    rows = family.calibration_rows
    calibration = [
        (family.prepare(task.train_x[i * rows : (i + 1) * rows], torch.float32),) for i in range(CALIBRATION_BATCHES)
    ]
    example = family.prepare(task.test_x[:1], torch.float32)
    servables, skipped = [], []
    for variant in variants:
        source, training = models.source(variant)
        precision = variant if variant in PRECISIONS else "fp32"
        try:
            built = convert(precision, _float_model(source), device, calibration, int8_backend)
        except VariantUnavailable as reason:
            skipped.append({"family": family.name, "variant": variant, "device": device.type, "reason": str(reason)})
            continue
        log(f"{family.name}/{variant}: scoring on held-out data")
        artifact = workdir / f"{family.name}-{variant}.pt"
        cold_load = cold_loader(built, artifact, device, skeleton_has_weights=False)
        notes = list(built.info.get("notes", []))
        if precision == "int8":
            notes.append("FLOPs are those of the float model it was quantized from (same arithmetic, in int8)")
        info = {
            "family": family.name,
            "variant": variant,
            "device": device.type,
            "dtype": "int8" if precision == "int8" else str(built.dtype).removeprefix("torch."),
            "description": family.description,
            "architecture": {"class": type(source).__name__, "arguments": source.arguments},
            "params": count_parameters(source),
            "flops_per_sample": count_flops(source, example),
            "size_bytes": artifact.stat().st_size,
            "quality": measure_quality(
                built.module, task, teacher_predictions, family.prepare, built.dtype, device, family.trained
            ),
            "quantization": built.info.get("quantization"),
            "training": training,
            "notes": notes,
        }
        servables.append(Servable(family.name, variant, device, built.dtype, built.module, codec, cold_load, info))
    return servables, skipped
