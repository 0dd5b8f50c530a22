"""Profile bundles: round trip, atomic writes, and clear refusal of bad, foreign or corrupt files."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from simulator.errors import LatsimError, ProfileBundleError
from simulator.formats.profile_bundle import (
    COLUMNS,
    FORMAT,
    METADATA_FILE,
    SAMPLES_FILE,
    file_sha256,
    load_bundle,
    write_bundle,
)
from simulator.profiling.table import latency_summary, markdown_table


def _samples(rows: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    batch = np.repeat([1, 8, 64], rows // 3)
    return pd.DataFrame(
        {
            "family": "cnn",
            "variant": np.where(np.arange(rows) % 2 == 0, "fp32", "int8"),
            "device": "cpu",
            "dtype": "float32",
            "batch_size": batch,
            "threads": 2,
            "concurrency": 1,
            "mode": "sweep",
            "stage": "end_to_end",
            "worker": 0,
            "sample_index": np.arange(rows),
            "timestamp_ns": np.arange(rows) * 1000,
            "latency_ms": batch * 0.5 + rng.exponential(0.1, rows),
        }
    )


METADATA = {
    "hardware_id": "cpu-test-2c",
    "created_utc": "2026-01-01T00:00:00+00:00",
    "hardware": {"cpu_model": "Test CPU", "cpu_cores": 2, "torch": "2.13.0", "gpu": None},
    "harness": {"serving_threads": 2},
    "machine_load": {"load_average_before": [0.1, 0.1, 0.1], "load_average_after": [0.2, 0.1, 0.1]},
    "models": [
        {"family": "cnn", "variant": "fp32", "device": "cpu", "params": 1000, "flops_per_sample": 2_000_000},
        {"family": "cnn", "variant": "int8", "device": "cpu", "params": 1000, "flops_per_sample": 2_000_000},
    ],
    "skipped": [{"family": "cnn", "variant": "fp16", "device": "cpu", "reason": "fp16 is profiled on GPU only"}],
}


@pytest.fixture
def bundle_dir(tmp_path):
    directory = tmp_path / "cpu-test-2c" / "zoo"
    write_bundle(directory, _samples(), METADATA)
    return directory


def test_round_trip_keeps_samples_and_metadata(bundle_dir):
    bundle = load_bundle(bundle_dir)
    assert list(bundle.samples.columns) == list(COLUMNS)
    assert len(bundle.samples) == 300
    assert np.allclose(bundle.samples["latency_ms"], _samples()["latency_ms"])
    assert bundle.metadata["format"] == FORMAT and bundle.hardware_id == "cpu-test-2c"
    assert bundle.metadata["samples"]["rows"] == 300
    assert load_bundle(bundle_dir / METADATA_FILE).samples.equals(bundle.samples)
    assert sorted(p.name for p in bundle_dir.iterdir()) == [METADATA_FILE, SAMPLES_FILE]  # no temp files left
    umask = os.umask(0)
    os.umask(umask)
    assert {p.stat().st_mode & 0o777 for p in bundle_dir.iterdir()} == {0o666 & ~umask}  # as any new file


def test_samples_are_compressed_with_zstd(bundle_dir):
    metadata = pq.ParquetFile(bundle_dir / SAMPLES_FILE).metadata
    assert metadata.row_group(0).column(0).compression == "ZSTD"


def test_edited_bytes_fail_the_hash_check(bundle_dir):
    path = bundle_dir / SAMPLES_FILE
    data = bytearray(path.read_bytes())
    data[100] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(ProfileBundleError, match=r"samples\.parquet: content does not match the sha256") as error:
        load_bundle(bundle_dir)
    assert isinstance(error.value, LatsimError)


def _rewrite_samples(bundle_dir, frame: pd.DataFrame) -> None:
    """Replace the samples and update the hash, as a careless tool would: only schema checks can catch it."""
    frame.to_parquet(bundle_dir / SAMPLES_FILE)
    metadata = json.loads((bundle_dir / METADATA_FILE).read_text())
    metadata["samples"]["sha256"] = file_sha256(bundle_dir / SAMPLES_FILE)
    (bundle_dir / METADATA_FILE).write_text(json.dumps(metadata))


def test_a_missing_column_is_named(bundle_dir):
    _rewrite_samples(bundle_dir, _samples().drop(columns=["stage"]))
    with pytest.raises(ProfileBundleError, match=r"samples\.parquet: missing the columns \['stage'\]"):
        load_bundle(bundle_dir)


def test_negative_latency_and_unknown_modes_are_refused(bundle_dir):
    bad = _samples()
    bad.loc[5, "latency_ms"] = -1.0
    _rewrite_samples(bundle_dir, bad)
    with pytest.raises(ProfileBundleError, match="finite and non-negative"):
        load_bundle(bundle_dir)
    bad = _samples()
    bad.loc[5, "mode"] = "warp-speed"
    _rewrite_samples(bundle_dir, bad)
    with pytest.raises(ProfileBundleError, match=r"unknown mode values \['warp-speed'\]"):
        load_bundle(bundle_dir)


def test_samples_of_an_undeclared_model_are_refused(bundle_dir):
    bad = _samples()
    bad.loc[0, "variant"] = "mystery"
    _rewrite_samples(bundle_dir, bad)
    with pytest.raises(ProfileBundleError, match=r"\('cnn', 'mystery', 'cpu'\)\] have no entry in metadata\.json"):
        load_bundle(bundle_dir)


def test_a_foreign_json_is_not_a_bundle(bundle_dir):
    (bundle_dir / METADATA_FILE).write_text(json.dumps({"name": "my-package", "version": "1.0"}))
    with pytest.raises(ProfileBundleError, match=r"metadata\.json: not a latsim profile bundle \(format is None"):
        load_bundle(bundle_dir)


def test_broken_json_and_newer_versions_are_explained(bundle_dir):
    path = bundle_dir / METADATA_FILE
    text = path.read_text()
    path.write_text(text[: len(text) // 2])
    with pytest.raises(ProfileBundleError, match=r"metadata\.json: not valid JSON"):
        load_bundle(bundle_dir)
    metadata = json.loads(text) | {"format_version": 99}
    path.write_text(json.dumps(metadata))
    with pytest.raises(ProfileBundleError, match="format version 99, but this latsim reads version 1"):
        load_bundle(bundle_dir)


def test_missing_directory_and_files(tmp_path, bundle_dir):
    with pytest.raises(ProfileBundleError, match="no such profile bundle directory"):
        load_bundle(tmp_path / "nowhere")
    (bundle_dir / SAMPLES_FILE).unlink()
    with pytest.raises(ProfileBundleError, match=r"samples\.parquet: missing"):
        load_bundle(bundle_dir)


def test_samples_file_must_stay_inside_the_bundle(bundle_dir):
    path = bundle_dir / METADATA_FILE
    metadata = json.loads(path.read_text())
    metadata["samples"]["file"] = "../../elsewhere.parquet"
    path.write_text(json.dumps(metadata))
    with pytest.raises(ProfileBundleError, match="missing"):
        load_bundle(bundle_dir)


def test_rewriting_a_bundle_replaces_it(bundle_dir):
    write_bundle(bundle_dir, _samples(150), METADATA)
    assert len(load_bundle(bundle_dir).samples) == 150


def test_summary_finds_batch_one_and_best_throughput(bundle_dir):
    summary = latency_summary(load_bundle(bundle_dir)).set_index("variant")
    assert summary.loc["fp32", "best_batch"] == 64  # latency grows slower than the batch size
    assert summary.loc["fp32", "batch1_median_ms"] == pytest.approx(0.5, abs=0.15)
    assert summary.loc["fp32", "batch1_p99_ms"] > summary.loc["fp32", "batch1_median_ms"]
    table = markdown_table(load_bundle(bundle_dir))
    assert "| cnn | fp32 | 1000 | 2.0 |" in table
    assert "not measured: cnn/fp16 on cpu: fp16 is profiled on GPU only" in table
    assert table.count("\n| cnn |") == 2


def test_summary_of_unmeasured_threads_names_the_measured_ones(bundle_dir):
    message = r"no sweep samples of stage 'end_to_end' with 7 threads; it has threads \[2\]"
    with pytest.raises(ProfileBundleError, match=message):
        latency_summary(load_bundle(bundle_dir), threads=7)
