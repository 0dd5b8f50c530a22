"""Service times drawn from a measured profile bundle (see ``latsim profile``).

The model resamples the calls measured for one family / variant / device / thread count /
concurrency / stage at the batch size in use. With ``block_length`` > 1 it replays runs of that
many consecutive measured calls (a moving-block bootstrap), so the slow and fast stretches of the
measured service process survive into the simulation instead of being shuffled away.

Batch sizes between two profiled sizes are interpolated: the samples of the profiled size below
are scaled so their mean lies on the straight line between the two profiled means (the shape of
the distribution is that of the size below). Sizes outside the profiled range are an error that
lists the profiled sizes. No torch needed: only the bundle files are read.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from simulator.errors import ProfileBundleError, ScenarioError
from simulator.formats.profile_bundle import (
    METADATA_FILE,
    SAMPLES_FILE,
    ProfileBundle,
    load_bundle,
)
from simulator.registry import SERVICE_MODELS
from simulator.scenario.service import COLD_STAGES, ProfileService
from simulator.service.base import ServiceTimeModel


@functools.lru_cache(maxsize=16)
def _cached_bundle(directory: Path, stamp: tuple[int, ...]) -> ProfileBundle:
    return load_bundle(directory)


def _load(path: Path) -> ProfileBundle:
    """Load a bundle once per content: many nodes of a scenario may name the same bundle."""
    directory = path.parent if path.name == METADATA_FILE else path
    files = [directory / METADATA_FILE, directory / SAMPLES_FILE]
    stamp = tuple(v for f in files if f.is_file() for v in (f.stat().st_mtime_ns, f.stat().st_size))
    return _cached_bundle(directory.resolve(), stamp)


def _choose(what: str, wanted: object, available: list, context: str) -> None:
    if wanted not in available:
        raise ScenarioError(f"service.profile: {context} has no {what} {wanted!r}; it has {sorted(available)}")


@SERVICE_MODELS.register
class ProfileBacked(ServiceTimeModel):
    """Empirical service times of a real kernel, from a profile bundle, at the batch size in use."""

    Config = ProfileService

    def __init__(self, config: ProfileService, base_dir: Path) -> None:
        super().__init__(config, base_dir)
        path = base_dir / config.bundle
        if not path.exists():
            raise ScenarioError(f"service.profile: bundle {path} does not exist (make one with `latsim profile`)")
        try:
            bundle = _load(path)
        except ProfileBundleError as error:
            raise ScenarioError(f"service.profile: {error}") from None
        self.bundle = bundle
        self._samples = self._select(bundle, path)
        self.profiled_batch_sizes = sorted(self._samples)
        self._means = {b: float(s.mean()) for b, s in self._samples.items()}

    def _select(self, bundle: ProfileBundle, path: Path) -> dict[int, np.ndarray]:
        c = self.config
        frame = bundle.samples
        _choose("family", c.family, frame["family"].unique().tolist(), f"bundle {path}")
        frame = frame[frame["family"] == c.family]
        variants = frame["variant"].unique().tolist()
        if c.variant not in variants:
            skipped = [
                s for s in bundle.metadata.get("skipped", []) if (s["family"], s["variant"]) == (c.family, c.variant)
            ]
            why = f" ({skipped[0]['reason']})" if skipped else ""
            raise ScenarioError(
                f"service.profile: bundle {path} has no variant {c.variant!r} of {c.family!r}{why}; "
                f"it has {sorted(variants)}"
            )
        frame = frame[frame["variant"] == c.variant]
        context = f"bundle {path} ({c.family}/{c.variant})"
        _choose("device", c.device, frame["device"].unique().tolist(), context)
        frame = frame[frame["device"] == c.device]
        self._model_samples = frame
        _choose("stage", c.stage, frame["stage"].unique().tolist(), context)
        frame = frame[frame["stage"] == c.stage]
        mode = "concurrent" if c.concurrency > 1 else "cold" if c.stage in COLD_STAGES else (c.mode or "sweep")
        frame = frame[frame["mode"] == mode]
        _choose(f"{mode} samples at concurrency", c.concurrency, frame["concurrency"].unique().tolist(), context)
        frame = frame[frame["concurrency"] == c.concurrency]
        threads = (
            c.threads if c.threads is not None else self._default_threads(bundle, frame["threads"].unique().tolist())
        )
        _choose(f"{mode} samples with threads", threads, frame["threads"].unique().tolist(), context)
        frame = frame[frame["threads"] == threads].sort_values(["batch_size", "worker", "sample_index"])
        return {int(b): group["latency_ms"].to_numpy() for b, group in frame.groupby("batch_size")}

    @property
    def ordered(self) -> bool:
        return self.config.block_length > 1

    def concurrency_levels(self) -> list[int]:
        """The worker counts above one whose concurrent runs the bundle measured for this model."""
        concurrent = self._model_samples[self._model_samples["mode"] == "concurrent"]
        return sorted(int(k) for k in concurrent["concurrency"].unique())

    def _default_threads(self, bundle: ProfileBundle, available: list) -> int | None:
        if len(available) == 1:
            return int(available[0])
        return bundle.metadata["harness"].get("serving_threads")

    def _base(self, batch_size: int) -> tuple[np.ndarray, float]:
        """Samples to draw from for ``batch_size`` and the factor that scales them to it."""
        sizes = self.profiled_batch_sizes
        if batch_size in self._samples:
            return self._samples[batch_size], 1.0
        if not sizes[0] < batch_size < sizes[-1]:
            raise ScenarioError(
                f"service.profile: {self.config.family}/{self.config.variant} was profiled at batch sizes {sizes}; "
                f"batch size {batch_size} is outside them (profile it with latsim profile --batch-sizes)"
            )
        below = max(b for b in sizes if b < batch_size)
        above = min(b for b in sizes if b > batch_size)
        fraction = (batch_size - below) / (above - below)
        mean = self._means[below] + fraction * (self._means[above] - self._means[below])
        return self._samples[below], mean / self._means[below]

    def draw_block(self, rng: np.random.Generator, size: int, batch_size: int = 1) -> np.ndarray:
        samples, scale = self._base(batch_size)
        length = min(self.config.block_length, len(samples))
        if length == 1:
            return samples[rng.integers(0, len(samples), size)] * scale
        starts = rng.integers(0, len(samples) - length + 1, -(-size // length))
        index = (starts[:, None] + np.arange(length)).reshape(-1)[:size]
        return samples[index] * scale

    def mean_ms(self, batch_size: int = 1) -> float:
        samples, scale = self._base(batch_size)
        return float(samples.mean()) * scale

    def second_moment_ms2(self, batch_size: int = 1) -> float:
        samples, scale = self._base(batch_size)
        return float(np.mean(samples**2)) * scale**2
