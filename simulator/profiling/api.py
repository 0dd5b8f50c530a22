"""Python API of profiling: the zoo, a user's model file or factory, or an ``nn.Module`` in hand →
a :class:`ProfileBundle` (written to ``out/<hardware-id>/<name>/`` when ``out`` is given).

    >>> bundle = profile_module(my_model, example_batch, name="ranker", out=Path("profiles"))
    >>> bundle.samples.query("stage == 'end_to_end'").groupby("batch_size").latency_ms.median()
"""

from __future__ import annotations

import datetime
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from torch import nn

from simulator.files import path_component
from simulator.formats.profile_bundle import ProfileBundle, write_bundle
from simulator.profiling.errors import ProfilingError
from simulator.profiling.hardware import (
    ContentionMeter,
    describe,
    hardware_id,
    resolve_device,
)
from simulator.profiling.harness import Harness, HarnessSettings
from simulator.profiling.quantization import Int8Backend
from simulator.profiling.servable import Servable
from simulator.profiling.user_models import UserModel, from_module, user_servables
from simulator.profiling.variants import VARIANTS
from simulator.profiling.zoo import ALL_FAMILY_NAMES, FAMILY_NAMES, zoo
from simulator.profiling.zoo_variants import zoo_servables

MODES = {
    "sweep": "back-to-back calls per batch size x intra-op threads (concurrency 1)",
    "sequence": "one long back-to-back run at batch 1, in order: drift and slow/fast stretches",
    "isolated": "calls at batch 1 separated by idle gaps of harness.isolated_gap_ms",
    "concurrent": "k workers (threads; CUDA streams on GPU) calling the same model at once",
    "cold": "load from disk (rebuild + torch.load(weights_only=True)) and the first call after it",
}
STAGES = {
    "overhead": "host work around the model: payload → tensors, output → Python",
    "h2d": "host-to-device copy of the inputs (GPU, CUDA events)",
    "compute": "the forward call (GPU: CUDA events on the worker's stream)",
    "d2h": "device-to-host copy of the outputs (GPU, CUDA events)",
    "end_to_end": "the whole request on the host clock",
    "load": "cold start: building the model and loading its weights from disk",
    "first_call": "cold start: end-to-end time of the first call after loading",
}

ServableSource = Callable[[torch.device, Path, Callable[[str], None]], tuple[list[Servable], list[dict[str, str]]]]


def _measure(
    build: ServableSource,
    device: torch.device,
    settings: HarnessSettings,
    progress: bool,
) -> tuple[pd.DataFrame, list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    started = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    console = Console(stderr=True)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with (
        Progress(*columns, console=console, disable=not progress, transient=True) as bar,
        tempfile.TemporaryDirectory(prefix="latsim-profile-") as workdir,
    ):
        preparing = bar.add_task("preparing models", total=None)
        servables, skipped = build(device, Path(workdir), lambda message: bar.update(preparing, description=message))
        bar.remove_task(preparing)
        timing = bar.add_task("timing", total=None)
        harness = Harness(settings, lambda message: bar.update(timing, advance=1, description=message))
        bar.update(timing, total=sum(harness.cells(s) for s in servables))
        with ContentionMeter() as contention:
            frames = [harness.measure(servable) for servable in servables]
    if not servables:
        reasons = "; ".join(f"{s['family']}/{s['variant']}: {s['reason']}" for s in skipped)
        raise ProfilingError(f"nothing to profile on {device.type}: {reasons}")
    extra = {
        "created_utc": started,
        "machine_load": contention.report(),
        "failures": [asdict(failure) for failure in harness.failures],
    }
    return pd.concat(frames, ignore_index=True), [s.info for s in servables], skipped, extra


def _bundle(
    samples: pd.DataFrame,
    models: list[dict[str, Any]],
    skipped: list[dict[str, Any]],
    extra: dict[str, Any],
    device: torch.device,
    settings: HarnessSettings,
    source: dict[str, Any],
    name: str,
    out: Path | None,
    command: str | None,
) -> ProfileBundle:
    timer = (
        "CUDA events per stage + time.perf_counter_ns end to end" if device.type == "cuda" else "time.perf_counter_ns"
    )
    metadata = {
        "name": name,
        "command": command,
        "hardware_id": hardware_id(device),
        "hardware": describe(device),
        "harness": settings.describe() | {"timer": timer, "inference_mode": True},
        **extra,
        "source": source,
        "modes": MODES,
        "stages": STAGES,
        "models": models,
        "skipped": skipped,
    }
    if out is None:
        return ProfileBundle(samples, metadata)
    return write_bundle(Path(out) / metadata["hardware_id"] / name, samples, metadata)


def _checked(names: Sequence[str], allowed: Sequence[str], what: str) -> list[str]:
    unknown = [n for n in names if n not in allowed]
    if unknown:
        raise ProfilingError(f"unknown {what} {unknown}; choose from {list(allowed)}")
    return list(dict.fromkeys(names))


def profile_zoo(
    families: Sequence[str] = FAMILY_NAMES,
    variants: Sequence[str] = VARIANTS,
    device: str = "auto",
    settings: HarnessSettings | None = None,
    out: Path | None = None,
    name: str = "zoo",
    seq_len: int = 64,
    size: str = "standard",
    seed: int = 0,
    int8_backend: Int8Backend = "auto",
    progress: bool = False,
    command: str | None = None,
) -> ProfileBundle:
    """Train (or initialise), derive and time the zoo's families in their variants."""
    path_component(name, "the bundle's name (--name)", ProfilingError)
    families = _checked(families, ALL_FAMILY_NAMES, "families")
    variants = _checked(variants, VARIANTS, "variants")
    settings = settings or HarnessSettings()
    chosen = resolve_device(device)
    catalogue = zoo(seq_len=seq_len, size=size)

    def build(target: torch.device, workdir: Path, log: Callable[[str], None]) -> tuple[list, list]:
        servables, skipped = [], []
        for family in families:
            made, missed = zoo_servables(catalogue[family], variants, target, workdir, seed, int8_backend, log)
            servables += made
            skipped += missed
        return servables, skipped

    samples, models, skipped, extra = _measure(build, chosen, settings, progress)
    source = {
        "kind": "zoo",
        "size": size,
        "seq_len": seq_len,
        "seed": seed,
        "families": {f: catalogue[f].description for f in families},
    }
    return _bundle(samples, models, skipped, extra, chosen, settings, source, name, out, command)


def profile_user_model(
    model: UserModel,
    variants: Sequence[str] = ("fp32", "int8", "bf16", "fp16"),
    device: str = "auto",
    settings: HarnessSettings | None = None,
    out: Path | None = None,
    int8_backend: Int8Backend = "auto",
    progress: bool = False,
    command: str | None = None,
) -> ProfileBundle:
    """Time a user's model (see :mod:`simulator.profiling.user_models`) in its precision variants."""
    path_component(model.name, "the model's name (--name; it names the bundle's folder and the family)", ProfilingError)
    variants = _checked(variants, VARIANTS, "variants")
    settings = settings or HarnessSettings()
    chosen = resolve_device(device)

    def build(target: torch.device, workdir: Path, log: Callable[[str], None]) -> tuple[list, list]:
        return user_servables(model, variants, target, workdir, int8_backend, log)

    samples, models, skipped, extra = _measure(build, chosen, settings, progress)
    source = {"kind": "user", **model.origin, "input_shapes": [list(t.shape[1:]) for t in model.example]}
    return _bundle(samples, models, skipped, extra, chosen, settings, source, model.name, out, command)


def profile_module(
    module: nn.Module,
    example_batch: torch.Tensor | tuple[torch.Tensor, ...],
    name: str = "model",
    variants: Sequence[str] = ("fp32", "int8", "bf16", "fp16"),
    factory: Callable[[], nn.Module] | None = None,
    device: str = "auto",
    settings: HarnessSettings | None = None,
    out: Path | None = None,
    progress: bool = False,
) -> ProfileBundle:
    """Profile an ``nn.Module``: requests are rows of ``example_batch`` (dim 0 is the batch).

    Pass ``factory`` (returning an empty model of the same structure) to also measure cold starts.
    ``bundle.samples`` is the tidy DataFrame of every sample.
    """
    model = from_module(module, example_batch, name, factory)
    return profile_user_model(model, variants, device, settings, out, progress=progress)
