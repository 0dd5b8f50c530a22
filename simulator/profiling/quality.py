"""Quality cost of a variant, measured on a task's held-out data: accuracy against the labels and
top-1 agreement with the fp32 teacher (how often the cheaper model answers as the original).
For a randomly initialised teacher the labels mean nothing: only the agreement is reported."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from simulator.profiling.tasks import Task


def predict(
    model: Callable[[torch.Tensor], torch.Tensor],
    payloads: np.ndarray,
    prepare: Callable[[np.ndarray, torch.dtype], torch.Tensor],
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
    batch_size: int = 256,
) -> np.ndarray:
    """Top-1 class of every payload row."""
    labels = []
    with torch.inference_mode():
        for start in range(0, len(payloads), batch_size):
            x = prepare(payloads[start : start + batch_size], dtype).to(device)
            labels.append(model(x).argmax(dim=-1).cpu().numpy())
    return np.concatenate(labels)


def top1_agreement(predictions: np.ndarray, reference: np.ndarray) -> float:
    """Fraction of rows on which two models pick the same class."""
    return float(np.mean(predictions == reference))


def measure_quality(
    model: Callable[[torch.Tensor], torch.Tensor],
    task: Task,
    teacher_predictions: np.ndarray,
    prepare: Callable[[np.ndarray, torch.dtype], torch.Tensor],
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
    labelled: bool = True,
) -> dict[str, Any]:
    """Accuracy (when the teacher learnt the labels) and teacher agreement of ``model`` on the test split."""
    predictions = predict(model, task.test_x, prepare, dtype, device)
    agreement = top1_agreement(predictions, teacher_predictions)
    if not labelled:
        return {
            "task": f"{task.name} (generated inputs; the teacher is untrained, so only agreement is measured)",
            "test_samples": len(task.test_y),
            "accuracy": None,
            "agreement_with_fp32": agreement,
        }
    teacher_accuracy = float(np.mean(teacher_predictions == task.test_y))
    accuracy = float(np.mean(predictions == task.test_y))
    return {
        "task": task.name,
        "test_samples": len(task.test_y),
        "chance_accuracy": 1.0 / task.classes,
        "accuracy": accuracy,
        "teacher_accuracy": teacher_accuracy,
        "accuracy_drop": teacher_accuracy - accuracy,
        "agreement_with_fp32": agreement,
    }
