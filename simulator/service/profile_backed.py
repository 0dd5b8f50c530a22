"""Service times drawn from a measured profile bundle (see ``latsim profile``).

The model resamples the calls measured for one family / variant / device / thread count /
concurrency / stage at the batch size in use. With a ``process`` other than ``iid`` (or
``block_length`` > 1: a moving-block bootstrap) it replays them in their measured order, so the
slow and fast stretches of the measured service process survive into the simulation instead of
being shuffled away.

Batch sizes between two profiled sizes are interpolated: the samples of the profiled size below
are scaled so their mean lies on the straight line between the two profiled means (the shape of
the distribution is that of the size below). Sizes outside the profiled range are an error that
lists the profiled sizes. No torch needed: only the bundle files are read.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from simulator.errors import ProfileBundleError, ScenarioError
from simulator.registry import SERVICE_MODELS
from simulator.scenario.service import COLD_STAGES, ProfileService
from simulator.service.sample_backed import SampleBacked

if TYPE_CHECKING:
    from simulator.formats.profile_bundle import ProfileBundle


@functools.lru_cache(maxsize=16)
def _cached_bundle(directory: Path, stamp: tuple[int, ...]) -> ProfileBundle:
    from simulator.formats.profile_bundle import load_bundle  # pandas: loaded only where a profile is read

    return load_bundle(directory)


def cached_bundle(path: Path) -> ProfileBundle:
    """Load a bundle once per content: many nodes of a scenario (and fitted models) may name the same bundle."""
    from simulator.formats.profile_bundle import METADATA_FILE, SAMPLES_FILE

    directory = path.parent if path.name == METADATA_FILE else path
    files = [directory / METADATA_FILE, directory / SAMPLES_FILE]
    stamp = tuple(v for f in files if f.is_file() for v in (f.stat().st_mtime_ns, f.stat().st_size))
    return _cached_bundle(directory.resolve(), stamp)


def _choose(what: str, wanted: object, available: list, context: str) -> None:
    if wanted not in available:
        raise ScenarioError(f"service.profile: {context} has no {what} {wanted!r}; it has {sorted(available)}")


@SERVICE_MODELS.register
class ProfileBacked(SampleBacked):
    """Empirical service times of a real kernel, from a profile bundle, at the batch size in use."""

    Config = ProfileService

    def __init__(self, config: ProfileService, base_dir: Path) -> None:
        super().__init__(config, base_dir, config.order())
        path = base_dir / config.bundle
        if not path.exists():
            raise ScenarioError(f"service.profile: bundle {path} does not exist (make one with `latsim profile`)")
        try:
            bundle = cached_bundle(path)
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

    def concurrency_levels(self) -> list[int]:
        """The worker counts above one whose concurrent runs the bundle measured for this model."""
        concurrent = self._model_samples[self._model_samples["mode"] == "concurrent"]
        return sorted(int(k) for k in concurrent["concurrency"].unique())

    def _default_threads(self, bundle: ProfileBundle, available: list) -> int | None:
        if len(available) == 1:
            return int(available[0])
        return bundle.metadata["harness"].get("serving_threads")

    def source(self, batch_size: int) -> tuple[np.ndarray, float]:
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
