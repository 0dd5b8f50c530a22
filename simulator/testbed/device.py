"""Where the testbed's kernels run: the CPU, or a CUDA device with one stream per worker, each call's end
taken once its worker's stream has finished it (a CUDA call returns when its work is queued, not done).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import torch

from simulator.testbed.errors import TestbedError
from simulator.testbed.workers import Kernel


def serving_device(name: str, cuda: Any = torch.cuda) -> torch.device:
    """The torch device a testbed config names; one clear line when it is CUDA and torch sees no GPU here."""
    if name == "cuda" and not cuda.is_available():
        raise TestbedError(
            "the scenario's service runs on device cuda, but torch sees no CUDA GPU on this machine: "
            "serve a cpu profile bundle here, or run the testbed on a machine with a GPU"
        )
    return torch.device(name)


class StreamPerWorker:
    """Runs each call on the calling thread's own CUDA stream (made on its first call) and returns after that
    stream has finished the call's work."""

    def __init__(self, device: torch.device, cuda: Any = torch.cuda) -> None:
        self.device, self._cuda = device, cuda
        self._local = threading.local()

    def __call__(self, call: Callable[[], Any]) -> Any:
        stream = getattr(self._local, "stream", None)
        if stream is None:
            stream = self._local.stream = self._cuda.Stream(device=self.device)
        with self._cuda.stream(stream):
            output = call()
        stream.synchronize()
        return output


def device_kernel(kernel: Kernel, device: torch.device, cuda: Any = torch.cuda) -> Kernel:
    """``kernel`` as a worker runs it on ``device``: as it is on the CPU; on CUDA on the worker's own stream,
    returning once the stream finished it (so the worker's kernel end is the device's)."""
    if device.type != "cuda":
        return kernel
    streams = StreamPerWorker(device, cuda)
    return lambda batch_size: streams(lambda: kernel(batch_size))
