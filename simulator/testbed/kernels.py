"""What the server's workers run: a zoo model (trained briefly at start-up, inputs prepared once
per batch size, only the forward call timed as the kernel) or a user's kernel imported by name.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from simulator.profiling.harness import Harness, HarnessSettings
from simulator.profiling.servable import Servable
from simulator.profiling.zoo import zoo
from simulator.profiling.zoo_variants import zoo_servables
from simulator.testbed.config import ModelSpec, TestbedConfig
from simulator.testbed.device import device_kernel, serving_device
from simulator.testbed.errors import TestbedError
from simulator.testbed.workers import Kernel


class ZooKernel:
    """A zoo servable's forward call on a batch prepared once per batch size, on the servable's device
    (decoding and the copy to the device not timed)."""

    def __init__(self, servable: Servable, max_batch_size: int, seed: int) -> None:
        rng = np.random.default_rng(seed)
        codec = servable.codec
        self.module = servable.module
        self.inputs = {
            size: tuple(tensor.to(servable.device) for tensor in codec.prepare(codec.make_payload(size, rng), servable.dtype))
            for size in range(1, max_batch_size + 1)
        }
        if servable.device.type == "cuda":  # the copies are on the default stream; the workers use their own
            torch.cuda.synchronize(servable.device)

    def __call__(self, batch_size: int) -> Any:
        with torch.inference_mode():
            return self.module(*self.inputs[batch_size])


def zoo_servable(spec: ModelSpec, device: torch.device, workdir: Path, log: Callable[[str], None]) -> Servable:
    """The zoo model of ``spec`` on ``device``, trained and scored as the profiler does."""
    family = zoo(seq_len=spec.seq_len, size=spec.size)[spec.family]
    made, skipped = zoo_servables(family, [spec.variant], device, workdir, spec.seed, log=log)
    if not made:
        raise TestbedError(f"{spec.family}/{spec.variant} cannot run here: {skipped[0]['reason']}")
    return made[0]


def imported_kernel(target: str, max_batch_size: int) -> Kernel:
    """The kernel made by a user's factory, named 'package.module:function'."""
    module_name, _, function_name = target.partition(":")
    if not module_name or not function_name:
        raise TestbedError(f"kernel {target!r}: expected 'package.module:factory'")
    try:
        factory = getattr(importlib.import_module(module_name), function_name)
    except (ImportError, AttributeError) as error:
        raise TestbedError(f"kernel {target!r} cannot be imported: {error}") from None
    kernel = factory(max_batch_size)
    if not callable(kernel):
        raise TestbedError(f"kernel {target!r}: the factory returned {type(kernel).__name__}, not a callable")
    return kernel


def build_kernel(config: TestbedConfig, workdir: Path, log: Callable[[str], None]) -> tuple[Kernel, Servable | None]:
    """The configured kernel on the config's device (see :func:`~simulator.testbed.device.device_kernel`), and the
    zoo servable behind it (None for a user kernel)."""
    device = serving_device(config.device)
    max_batch_size = config.batching.max_batch_size
    if config.kernel is not None:
        return device_kernel(imported_kernel(config.kernel, max_batch_size), device), None
    servable = zoo_servable(config.model, device, workdir, log)
    return device_kernel(ZooKernel(servable, max_batch_size, config.model.seed), device), servable


def warm_up(kernel: Kernel, config: TestbedConfig) -> None:
    """Call the kernel ``warmup_calls`` times at every batch size it may be called with."""
    for size in range(1, config.batching.max_batch_size + 1):
        for _ in range(config.warmup_calls):
            kernel(size)


def harness_profile(servable: Servable, config: TestbedConfig) -> pd.DataFrame:
    """The profiler's own in-process measurement of the served model (sweep at batch 1 and the
    largest batch, a back-to-back sequence, isolated calls, and ``workers`` concurrent callers),
    taken in the server process before it listens: what a user would measure before deploying."""
    threads = config.intra_op_threads
    settings = HarnessSettings(
        batch_sizes=tuple(sorted({1, config.batching.max_batch_size})),
        threads=(threads,),
        concurrency=tuple(sorted({1, config.workers})),
        serving_threads=threads,
        sequence_calls=300,
        sequence_budget_s=1.5,
        isolated_calls=20,
        cold_repeats=0,
        seed=config.model.seed,
    )
    return Harness(settings).measure(servable)
