"""The testbed's GPU plumbing, checked on the CPU: the device a scenario asks for, the refusal without CUDA, and
the per-worker stream a kernel runs on, with its end taken after the stream finished (a fake CUDA module)."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

pytest.importorskip("aiohttp")
torch = pytest.importorskip("torch")

from simulator.scenario.loader import load_scenario  # noqa: E402
from simulator.testbed import scenario as testbed_scenario  # noqa: E402
from simulator.testbed.config import TestbedConfig  # noqa: E402
from simulator.testbed.device import StreamPerWorker, device_kernel, serving_device  # noqa: E402
from simulator.testbed.errors import TestbedError  # noqa: E402
from simulator.testbed.run import ServerProcess  # noqa: E402

PROFILES = Path(__file__).resolve().parent.parent / "profiles"


class FakeCuda:
    """What the testbed uses of ``torch.cuda``, logging what happens in order."""

    def __init__(self, available: bool = True) -> None:
        self.available, self.log, self.streams = available, [], []

    def is_available(self) -> bool:
        return self.available

    def Stream(self, device):  # noqa: N802  (torch.cuda's name)
        cuda = self

        class Stream:
            def synchronize(self) -> None:
                cuda.log.append(("synchronize", self))

        stream = Stream()
        self.streams.append((threading.get_ident(), stream))
        return stream

    @contextmanager
    def stream(self, stream):
        self.log.append(("enter", stream))
        yield
        self.log.append(("exit", stream))


def cuda_scenario(tmp_path: Path) -> Path:
    data = {
        "name": "gpu",
        "workload": {"arrival": {"process": "poisson", "rate_per_s": 100}, "classes": [{"name": "a"}]},
        "nodes": [{"name": "gpu", "workers": 2, "batching": {"max_batch_size": 8, "max_queue_delay_ms": 1},
                   "service": {"distribution": "profile", "bundle": str(PROFILES / "cuda-nvidia-h100-80gb-hbm3" / "zoo"),
                               "family": "cnn", "variant": "fp32", "device": "cuda"}}],
    }
    path = tmp_path / "gpu.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_a_scenario_on_a_cuda_bundle_is_served_on_cuda_and_one_on_a_cpu_bundle_on_the_cpu(tmp_path):
    config = testbed_scenario.testbed_config(load_scenario(cuda_scenario(tmp_path)))
    assert config.device == "cuda" and config.workers == 2 and config.batching.max_batch_size == 8
    assert TestbedConfig.parse({}).device == "cpu"
    assert serving_device("cpu", FakeCuda(available=False)) == torch.device("cpu")
    assert serving_device("cuda", FakeCuda(available=True)) == torch.device("cuda")


def test_cuda_without_a_gpu_is_refused_in_one_line_before_any_server_starts(tmp_path, monkeypatch):
    with pytest.raises(TestbedError) as refused:
        serving_device("cuda", FakeCuda(available=False))
    assert "no CUDA GPU" in str(refused.value) and "\n" not in str(refused.value)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # as on a machine without a GPU, wherever this runs
    config = testbed_scenario.testbed_config(load_scenario(cuda_scenario(tmp_path)))
    with pytest.raises(TestbedError, match="no CUDA GPU"):
        ServerProcess(config, tmp_path / "server").__enter__()
    assert not (tmp_path / "server").exists()


def test_each_worker_runs_on_its_own_stream_and_the_call_ends_after_the_stream_finished():
    cuda = FakeCuda()
    calls = []

    def kernel(batch_size):
        calls.append(batch_size)
        cuda.log.append(("kernel", batch_size))
        return batch_size * 10

    run = device_kernel(kernel, torch.device("cuda"), cuda)
    assert run(3) == 30 and run(1) == 10  # the worker's output, from its own stream
    worker = threading.Thread(target=run, args=(2,))
    worker.start()
    worker.join()
    assert calls == [3, 1, 2]
    assert len(cuda.streams) == 2 and cuda.streams[0][0] != cuda.streams[1][0]  # one stream per worker thread, reused
    first = cuda.streams[0][1]
    assert cuda.log[:4] == [("enter", first), ("kernel", 3), ("exit", first), ("synchronize", first)]


def test_on_the_cpu_a_kernel_runs_as_it_is():
    def kernel(batch_size):
        return batch_size

    assert device_kernel(kernel, torch.device("cpu"), FakeCuda()) is kernel
    streams = StreamPerWorker(torch.device("cuda"), FakeCuda())
    assert streams(lambda: "done") == "done"
