"""Short CPU training: teachers on a task's labels, students by distillation from a teacher, and
the batch-norm statistics of a randomly initialised model estimated on generated inputs.

Both share one loop (Adam, one-cycle schedule, fixed seed and step count) and differ only in the
loss: cross entropy on the labels, or KL divergence between temperature-softened student and
teacher logits (Hinton et al.), scaled by T² so its gradients keep their size.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from simulator.profiling.tasks import Task

Prepare = Callable[[np.ndarray, torch.dtype], torch.Tensor]
Loss = Callable[[torch.Tensor, torch.Tensor, np.ndarray], torch.Tensor]


@dataclass(frozen=True)
class TrainingPlan:
    """How long and how hard one model is trained."""

    steps: int
    batch_size: int
    learning_rate: float


def _fit(
    model: nn.Module, task: Task, prepare: Prepare, loss_fn: Loss, plan: TrainingPlan, seed: int
) -> dict[str, Any]:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=plan.learning_rate)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=plan.learning_rate, total_steps=plan.steps)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread: reproducible, and immune to stragglers when the machine is shared
    model.train()
    losses = []
    try:
        for _ in range(plan.steps):
            index = rng.integers(0, len(task.train_y), plan.batch_size)
            x = prepare(task.train_x[index], torch.float32)
            loss = loss_fn(model(x), x, index)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            losses.append(loss.item())
    finally:
        model.eval()
        torch.set_num_threads(threads)
    tail = losses[-max(len(losses) // 10, 1) :]
    return {
        "steps": plan.steps,
        "batch_size": plan.batch_size,
        "learning_rate": plan.learning_rate,
        "final_loss": float(np.mean(tail)),
    }


def train_classifier(model: nn.Module, task: Task, prepare: Prepare, plan: TrainingPlan, seed: int) -> dict[str, Any]:
    """Train ``model`` on the task's labels; returns the training record for the bundle metadata."""
    labels = torch.from_numpy(task.train_y)

    def loss(logits: torch.Tensor, x: torch.Tensor, index: np.ndarray) -> torch.Tensor:
        return F.cross_entropy(logits, labels[index])

    return {"objective": "cross-entropy on labels"} | _fit(model, task, prepare, loss, plan, seed)


def distill(
    student: nn.Module,
    teacher: nn.Module,
    task: Task,
    prepare: Prepare,
    plan: TrainingPlan,
    seed: int,
    temperature: float = 4.0,
) -> dict[str, Any]:
    """Train ``student`` on the teacher's soft outputs only (it never sees a label)."""
    teacher.eval()

    def loss(logits: torch.Tensor, x: torch.Tensor, index: np.ndarray) -> torch.Tensor:
        with torch.no_grad():
            target = F.log_softmax(teacher(x) / temperature, dim=-1)
        student_log = F.log_softmax(logits / temperature, dim=-1)
        return F.kl_div(student_log, target, log_target=True, reduction="batchmean") * temperature**2

    record = _fit(student, task, prepare, loss, plan, seed)
    return {"objective": f"KL(teacher || student) at temperature {temperature}", "temperature": temperature} | record


def estimate_batch_norm(model: nn.Module, task: Task, prepare: Prepare, batch_size: int) -> dict[str, Any]:
    """Set the running statistics of every batch norm of an untrained ``model`` to those of the task's
    inputs (a cumulative average over the training split), so its activations keep their scale and
    its outputs depend on the input, as a trained network's do. Returns the record for the bundle."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return {"objective": "none: randomly initialised (seeded)"}
    momenta = [norm.momentum for norm in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a cumulative average over all batches
    model.train()
    try:
        with torch.no_grad():
            for start in range(0, len(task.train_x), batch_size):
                model(prepare(task.train_x[start : start + batch_size], torch.float32))
    finally:
        model.eval()
        for norm, momentum in zip(norms, momenta):
            norm.momentum = momentum
    return {
        "objective": "none: randomly initialised (seeded); batch-norm statistics estimated on generated inputs",
        "batch_norm_samples": len(task.train_x),
    }
