"""The profile-backed service model: samples a bundle at the batch size in use, errors clearly."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from pydantic import TypeAdapter, ValidationError

from simulator import run, scenario_from_dict
from simulator.errors import ScenarioError
from simulator.formats.profile_bundle import write_bundle
from simulator.registry import SERVICE_MODELS
from simulator.scenario.service import ProfileService
from simulator.service.base import build_service_model
from simulator.service.profile_backed import ProfileBacked
from tests.helpers import base_scenario

# batch size → the latencies (ms) measured back to back, in order: a slow stretch then a fast one
MEASURED = {1: [2.0] * 50 + [1.0] * 50, 4: [4.0] * 100, 16: [12.0] * 100}


def _rows(variant: str, batch_size: int, latencies: list[float], **cell) -> pd.DataFrame:
    count = len(latencies)
    base = dict(family="mlp", variant=variant, device="cpu", dtype="float32", threads=2, concurrency=1, mode="sweep")
    base |= cell
    return pd.DataFrame(
        {
            **base,
            "batch_size": batch_size,
            "stage": "end_to_end",
            "worker": 0,
            "sample_index": np.arange(count),
            "timestamp_ns": np.arange(count) * 1_000_000,
            "latency_ms": latencies,
        }
    )


@pytest.fixture
def bundle_dir(tmp_path):
    frames = [_rows("fp32", b, latencies) for b, latencies in MEASURED.items()]
    frames.append(_rows("fp32", 1, [1.5] * 100, threads=1))
    frames.append(_rows("fp32", 1, [3.0] * 40 + [9.0] * 10, concurrency=2, mode="concurrent"))
    frames.append(_rows("int8", 1, [0.5] * 20))
    frames.append(_rows("fp32", 1, [7.0] * 10, mode="isolated"))
    metadata = {
        "hardware_id": "cpu-test-2c",
        "created_utc": "2026-01-01T00:00:00+00:00",
        "hardware": {"cpu_model": "test", "cpu_cores": 2, "torch": "none"},
        "harness": {"serving_threads": 2},
        "models": [
            {"family": "mlp", "variant": v, "device": "cpu", "params": 10, "flops_per_sample": 20}
            for v in ("fp32", "int8")
        ],
        "skipped": [{"family": "mlp", "variant": "fp16", "device": "cpu", "reason": "fp16 is profiled on GPU only"}],
    }
    directory = tmp_path / "profiles" / "cpu-test-2c" / "zoo"
    write_bundle(directory, pd.concat(frames, ignore_index=True), metadata)
    return directory


def _model(tmp_path, **fields) -> ProfileBacked:
    fields = {"bundle": "profiles/cpu-test-2c/zoo", "family": "mlp"} | fields
    return build_service_model(ProfileService(distribution="profile", **fields), tmp_path)


def test_registered_under_its_discriminator():
    assert "profile" in SERVICE_MODELS.names()
    config = TypeAdapter(SERVICE_MODELS.field()).validate_python(
        {"distribution": "profile", "bundle": "b", "family": "mlp"}
    )
    assert isinstance(config, ProfileBacked.Config) and config.variant == "fp32" and config.stage == "end_to_end"


def test_samples_the_profiled_batch_size(bundle_dir, tmp_path):
    model = _model(tmp_path)
    rng = np.random.default_rng(0)
    assert set(np.unique(model.draw_block(rng, 1000, batch_size=1))) == {1.0, 2.0}
    assert np.all(model.draw_block(rng, 100, batch_size=4) == 4.0)
    assert model.mean_ms(1) == pytest.approx(1.5)
    assert model.second_moment_ms2(1) == pytest.approx((4.0 + 1.0) / 2)
    assert model.profiled_batch_sizes == [1, 4, 16]


def test_interpolates_between_profiled_batch_sizes(bundle_dir, tmp_path):
    model = _model(tmp_path)
    # batch 10 lies half-way between 4 (4 ms) and 16 (12 ms): mean 8 ms, shape of batch 4
    assert model.mean_ms(10) == pytest.approx(8.0)
    assert np.allclose(model.draw_block(np.random.default_rng(0), 50, batch_size=10), 8.0)
    assert model.second_moment_ms2(10) == pytest.approx(64.0)


def test_batch_size_outside_the_profile_is_an_error_listing_profiled_sizes(bundle_dir, tmp_path):
    with pytest.raises(ScenarioError, match=r"batch sizes \[1, 4, 16\]; batch size 32 is outside"):
        _model(tmp_path).draw_block(np.random.default_rng(0), 10, batch_size=32)


def test_block_bootstrap_keeps_slow_and_fast_stretches(bundle_dir, tmp_path):
    rng = np.random.default_rng(1)
    iid = _model(tmp_path).draw_block(rng, 10_000, batch_size=1)
    blocks = _model(tmp_path, block_length=25).draw_block(rng, 10_000, batch_size=1)

    def changes(x: np.ndarray) -> int:
        return int(np.sum(x[1:] != x[:-1]))

    assert changes(blocks) < changes(iid) / 5  # consecutive calls stay in the same stretch
    assert blocks.mean() == pytest.approx(1.5, abs=0.05)


def test_threads_concurrency_and_mode_select_their_samples(bundle_dir, tmp_path):
    assert _model(tmp_path, threads=1).mean_ms(1) == pytest.approx(1.5)
    assert _model(tmp_path, concurrency=2).mean_ms(1) == pytest.approx(4.2)
    assert _model(tmp_path, mode="isolated").mean_ms(1) == pytest.approx(7.0)
    with pytest.raises(ScenarioError, match=r"no concurrent samples at concurrency 4.*\[2\]"):
        _model(tmp_path, concurrency=4)
    with pytest.raises(ScenarioError, match=r"threads 8.*\[1, 2\]"):
        _model(tmp_path, threads=8)
    with pytest.raises(ValidationError, match="measured with one worker"):
        ProfileBacked.Config(distribution="profile", bundle="b", family="mlp", mode="sequence", concurrency=2)


def test_unknown_variant_family_and_missing_bundle_are_clear_errors(bundle_dir, tmp_path):
    with pytest.raises(ScenarioError, match=r"no variant 'pruned' of 'mlp'; it has \['fp32', 'int8'\]"):
        _model(tmp_path, variant="pruned")
    with pytest.raises(ScenarioError, match=r"no variant 'fp16'.*\(fp16 is profiled on GPU only\)"):
        _model(tmp_path, variant="fp16")
    with pytest.raises(ScenarioError, match=r"no family 'cnn'; it has \['mlp'\]"):
        _model(tmp_path, family="cnn")
    with pytest.raises(ScenarioError, match="no device 'cuda'"):
        _model(tmp_path, device="cuda")
    config = ProfileBacked.Config(distribution="profile", bundle="profiles/nowhere", family="mlp")
    with pytest.raises(ScenarioError, match=r"bundle .*profiles/nowhere does not exist"):
        build_service_model(config, tmp_path)


def test_a_corrupt_bundle_is_a_scenario_error(bundle_dir, tmp_path):
    samples = bundle_dir / "samples.parquet"
    data = bytearray(samples.read_bytes())
    data[len(data) // 2] ^= 0xFF
    samples.write_bytes(bytes(data))
    with pytest.raises(ScenarioError, match="samples.parquet: content does not match the sha256"):
        _model(tmp_path)


def test_a_scenario_runs_on_a_profile_backed_node(bundle_dir, tmp_path):
    service = {"distribution": "profile", "bundle": "profiles/cpu-test-2c/zoo", "family": "mlp"}
    data = base_scenario()
    data["run"].update(requests=2000, warmup_requests=100, replications=1)
    data["nodes"][0]["service"] = service
    summary = run(scenario_from_dict(data, base_dir=tmp_path)).summary
    assert summary["classes"]["all"]["service_ms"]["mean"]["estimate"] == pytest.approx(1.5, abs=0.1)
    assert summary["nodes"]["n"]["utilization"]["estimate"] == pytest.approx(50 * 1.5 / 1000, abs=0.01)


def test_the_service_model_does_not_import_torch():
    code = "import sys, simulator.service.profile_backed; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
