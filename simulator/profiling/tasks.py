"""Synthetic classification tasks, one per family, so that variants carry a measured quality cost.

Each task is hard enough that a model must learn something (chance is 1/classes) yet easy enough
that a teacher reaches a clearly better accuracy within seconds of CPU training. Payloads are
numpy arrays in the form a server would decode from a request (float features, uint8 images,
int64 token ids), so the same input preparation serves training, quality checks and timing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Task:
    """Train and held-out test payloads with their labels."""

    name: str
    classes: int
    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray

    def describe(self) -> dict[str, object]:
        return {
            "name": self.name,
            "classes": self.classes,
            "train_samples": len(self.train_y),
            "test_samples": len(self.test_y),
            "chance_accuracy": 1.0 / self.classes,
        }


def _split(name: str, classes: int, x: np.ndarray, y: np.ndarray, n_train: int) -> Task:
    return Task(name, classes, x[:n_train], y[:n_train], x[n_train:], y[n_train:])


def gaussian_clusters(
    seed: int, features: int, classes: int, n_train: int, n_test: int, clusters_per_class: int = 3
) -> Task:
    """Each class is a mixture of Gaussian clusters in feature space (not linearly separable)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, 1.0, size=(classes * clusters_per_class, features))
    y = rng.integers(0, classes, n_train + n_test)
    cluster = y * clusters_per_class + rng.integers(0, clusters_per_class, len(y))
    x = centres[cluster] + rng.normal(0.0, 1.6, size=(len(y), features))
    return _split("gaussian-clusters", classes, x.astype(np.float32), y, n_train)


def image_patterns(seed: int, classes: int, n_train: int, n_test: int, size: int = 32) -> Task:
    """Noisy coloured gratings: the class is the grating's orientation and spatial frequency."""
    rng = np.random.default_rng(seed)
    n = n_train + n_test
    y = rng.integers(0, classes, n)
    orientations = max(classes // 2, 1)
    angle = (y % orientations) * np.pi / orientations + rng.normal(0.0, 0.2, n)
    frequency = np.where(y // orientations == 0, 2.0, 3.0) * rng.uniform(0.85, 1.15, n)
    phase = rng.uniform(0.0, 2 * np.pi, n)
    grid = np.arange(size) / size
    yy, xx = np.meshgrid(grid, grid, indexing="ij")
    along = np.cos(angle)[:, None, None] * xx + np.sin(angle)[:, None, None] * yy
    wave = np.sin(2 * np.pi * frequency[:, None, None] * along + phase[:, None, None])
    tint = rng.uniform(0.3, 1.0, size=(n, 1, 1, 3))
    images = 127.5 + 70.0 * wave[..., None] * tint + rng.normal(0.0, 90.0, size=(n, size, size, 3))
    return _split("image-patterns", classes, np.clip(images, 0, 255).astype(np.uint8), y, n_train)


def token_motifs(
    seed: int, vocab: int, seq_len: int, classes: int, n_train: int, n_test: int, motif_size: int = 8
) -> Task:
    """Random token sequences seeded with signature tokens: the class whose signature tokens are
    planted most often (other classes' tokens appear as distractors) is the label."""
    rng = np.random.default_rng(seed)
    n = n_train + n_test
    signatures = rng.choice(vocab, size=(classes, motif_size), replace=False)
    tokens = rng.integers(0, vocab, size=(n, seq_len))
    y = rng.integers(0, classes, n)
    planted = max(seq_len // 8, 2)
    for row in range(n):
        positions = rng.choice(seq_len, size=2 * planted, replace=False)
        tokens[row, positions[:planted]] = rng.choice(signatures[y[row]], planted)
        distractor = rng.integers(0, classes)
        tokens[row, positions[planted : planted + planted // 2]] = rng.choice(signatures[distractor], planted // 2)
    return _split("token-motifs", classes, tokens.astype(np.int64), y, n_train)
