"""The timing harness: a tiny sweep runs in seconds and yields a valid, honest bundle."""

from __future__ import annotations

import time

import numpy as np
import pytest

pytestmark = pytest.mark.profiling

torch = pytest.importorskip("torch")

from simulator.formats.profile_bundle import load_bundle  # noqa: E402
from simulator.profiling.api import profile_zoo  # noqa: E402
from simulator.profiling.errors import ProfilingError  # noqa: E402
from simulator.profiling.hardware import hardware_id, resolve_device  # noqa: E402
from simulator.profiling.harness import Harness, HarnessSettings  # noqa: E402
from simulator.profiling.servable import RequestCodec, Servable, arrays_answer  # noqa: E402

TINY = HarnessSettings(
    batch_sizes=(1, 4),
    threads=(1,),
    concurrency=(1, 2),
    serving_threads=1,
    warmup_calls=1,
    min_samples=4,
    max_samples=8,
    cell_budget_s=0.02,
    sequence_calls=20,
    sequence_budget_s=0.2,
    isolated_calls=3,
    isolated_gap_ms=2.0,
    cold_repeats=2,
)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    out = tmp_path_factory.mktemp("profiles")
    return profile_zoo(
        families=["mlp"], variants=["fp32", "int8", "fp16"], device="cpu", settings=TINY, out=out, size="tiny"
    )


def test_bundle_is_written_under_the_hardware_id_and_loads(bundle):
    assert bundle.path.name == "zoo" and bundle.path.parent.name == hardware_id(torch.device("cpu"))
    capability = torch.backends.cpu.get_cpu_capability().lower()
    assert bundle.path.parent.name.startswith("cpu-") and bundle.path.parent.name.endswith(f"c-{capability}")
    reloaded = load_bundle(bundle.path)
    assert len(reloaded.samples) == len(bundle.samples) > 0
    assert (bundle.path / "samples.parquet").stat().st_size < 200_000


def test_every_mode_and_stage_is_measured(bundle):
    samples = bundle.samples
    assert set(samples["variant"]) == {"fp32", "int8"}
    assert set(samples["mode"]) == {"sweep", "sequence", "isolated", "concurrent", "cold"}
    warm = samples[samples["mode"] != "cold"]
    assert set(warm["stage"]) == {"overhead", "compute", "end_to_end"}
    assert set(samples.loc[samples["mode"] == "cold", "stage"]) == {"load", "first_call", "end_to_end"}
    sweep = samples.query("mode == 'sweep' and stage == 'end_to_end'")
    assert set(sweep["batch_size"]) == {1, 4}
    counts = sweep.groupby(["variant", "batch_size"]).size()
    assert counts.between(TINY.min_samples, TINY.max_samples).all()
    assert (samples["latency_ms"] > 0).all()


def test_stages_add_up_and_calls_are_in_time_order(bundle):
    wide = bundle.samples.query("mode == 'sequence'").pivot_table(
        index=["variant", "sample_index"], columns="stage", values="latency_ms"
    )
    assert np.allclose(wide["overhead"] + wide["compute"], wide["end_to_end"])
    assert (wide["overhead"] < wide["end_to_end"]).all()
    sequence = bundle.samples.query("mode == 'sequence' and stage == 'compute' and variant == 'fp32'")
    assert sequence["sample_index"].tolist() == list(range(len(sequence)))
    assert sequence["timestamp_ns"].is_monotonic_increasing
    cold = bundle.samples.query("mode == 'cold'").pivot_table(
        index=["variant", "sample_index"], columns="stage", values="latency_ms"
    )
    assert np.allclose(cold["load"] + cold["first_call"], cold["end_to_end"])


def test_isolated_calls_are_separated_by_idle_gaps(bundle):
    isolated = bundle.samples.query("mode == 'isolated' and stage == 'end_to_end' and variant == 'fp32'")
    gaps_ms = np.diff(isolated["timestamp_ns"].to_numpy()) / 1e6
    assert (gaps_ms >= TINY.isolated_gap_ms).all()


def test_concurrent_cells_record_every_worker(bundle):
    concurrent = bundle.samples.query("mode == 'concurrent' and stage == 'end_to_end' and variant == 'fp32'")
    assert set(concurrent["concurrency"]) == {2} and set(concurrent["worker"]) == {0, 1}
    assert concurrent["timestamp_ns"].is_monotonic_increasing  # calls of all workers in start order


class _Sleeper(torch.nn.Module):
    """A kernel that takes 3 ms and releases the GIL, like a real kernel on its own device."""

    def forward(self, x):
        time.sleep(0.003)
        return x


def _servable(module: torch.nn.Module, name: str) -> Servable:
    codec = RequestCodec(
        make_payload=lambda batch, rng: (rng.standard_normal((batch, 3)).astype(np.float32),),
        prepare=lambda payload, dtype: (torch.from_numpy(payload[0]),),
        postprocess=arrays_answer,
    )
    return Servable(name, "fp32", torch.device("cpu"), torch.float32, module, codec, None)


def test_concurrent_workers_start_together_and_overlap():
    settings = HarnessSettings.quick(batch_sizes=(1,), concurrency=(1, 3), min_samples=6, max_samples=6)
    samples = Harness(settings).measure(_servable(_Sleeper(), "sleeper"))
    concurrent = samples.query("mode == 'concurrent' and stage == 'end_to_end'")
    spans = concurrent.groupby("worker")["timestamp_ns"].agg(["min", "max"])
    assert len(spans) == 3 and (concurrent.groupby("worker").size() == 2).all()
    assert spans["min"].max() < spans["max"].min()  # every worker was calling while the others were


def test_metadata_tells_how_and_where_it_was_measured(bundle):
    metadata = bundle.metadata
    assert metadata["hardware"]["cpu_cores"] >= 1 and metadata["hardware"]["torch"] == torch.__version__
    load = metadata["machine_load"]
    assert len(load["load_average_before"]) == 3 and len(load["load_average_after"]) == 3
    assert metadata["harness"]["batch_sizes"] == [1, 4] and metadata["harness"]["timer"] == "time.perf_counter_ns"
    assert [s["variant"] for s in metadata["skipped"]] == ["fp16"]
    assert {m["variant"] for m in metadata["models"]} == {"fp32", "int8"}
    assert metadata["samples"]["rows"] == len(bundle.samples)


class _FixedBatch(torch.nn.Module):
    """A model exported with a fixed batch size of 1: it rejects every other batch size."""

    def forward(self, x):
        if x.shape[0] != 1:
            raise ValueError(f"expected batch 1, got {x.shape[0]}")
        return x * 2


def test_a_rejected_batch_size_is_recorded_not_fatal():
    servable = _servable(_FixedBatch(), "fixed")
    settings = HarnessSettings.quick(batch_sizes=(1, 4), concurrency=(1,), min_samples=2, max_samples=3)
    harness = Harness(settings)
    threads = torch.get_num_threads()
    samples = harness.measure(servable)
    assert torch.get_num_threads() == threads  # intra-op threads restored
    assert set(samples.query("mode == 'sweep'")["batch_size"]) == {1}
    assert [(f.batch_size, f.mode) for f in harness.failures] == [(4, "sweep")]
    assert "expected batch 1, got 4" in harness.failures[0].reason


def test_device_choice():
    assert resolve_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        assert resolve_device("auto") == torch.device("cpu")
        with pytest.raises(ProfilingError, match="torch sees no CUDA GPU"):
            resolve_device("cuda")


def test_settings_are_checked():
    with pytest.raises(ProfilingError, match="batch_sizes must be a non-empty list of positive integers"):
        HarnessSettings(batch_sizes=(0, 4))
    with pytest.raises(ProfilingError, match="min_samples <= max_samples"):
        HarnessSettings(min_samples=10, max_samples=5)
