"""Hostile inputs, profile bundles: metadata of the wrong type or shape, and files that are not what they claim.

Every case is run through both readers of a bundle, ``latsim validate`` of a scenario whose service
model is the bundle (what ``run`` does before simulating) and ``latsim profile --table``: each must
give exit 2 with the file and the metadata key named, never a traceback.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from simulator.formats.profile_bundle import METADATA_FILE, SAMPLES_FILE, file_sha256
from tests.helpers import base_scenario
from tests.hostile import assert_clean_error, assert_ok, cli, write_scenario
from tests.hostile.bundle import write_pristine


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    return write_pristine(tmp_path_factory.mktemp("bundles") / "bundle")


def _metadata(change: Callable[[dict[str, Any]], None]) -> Callable[[Path], None]:
    """Edit metadata.json (its samples hash stays right, so the metadata check is what answers)."""

    def apply(bundle: Path) -> None:
        metadata = json.loads((bundle / METADATA_FILE).read_text())
        change(metadata)
        (bundle / METADATA_FILE).write_text(json.dumps(metadata))

    return apply


def _set(*keys: Any, value: Any) -> Callable[[Path], None]:
    def change(metadata: dict[str, Any]) -> None:
        node = metadata
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value

    return _metadata(change)


def _delete(*keys: str) -> Callable[[Path], None]:
    def change(metadata: dict[str, Any]) -> None:
        node = metadata
        for key in keys[:-1]:
            node = node[key]
        del node[keys[-1]]

    return _metadata(change)


def _replace_file(name: str, content: bytes) -> Callable[[Path], None]:
    def apply(bundle: Path) -> None:
        (bundle / name).unlink()
        (bundle / name).write_bytes(content)

    return apply


def _special(name: str, kind: str) -> Callable[[Path], None]:
    def apply(bundle: Path) -> None:
        (bundle / name).unlink()
        if kind == "fifo":
            os.mkfifo(bundle / name)
        else:
            (bundle / name).mkdir()

    return apply


def _corrupt_samples_with_matching_hash(bundle: Path) -> None:
    (bundle / SAMPLES_FILE).write_bytes(b"PAR1" + b"\x00" * 100 + b"PAR1")
    _set("samples", "sha256", value=file_sha256(bundle / SAMPLES_FILE))(bundle)


def _link_outside(name: str) -> Callable[[Path], None]:
    """The bundle's file ``name`` moved out of the bundle, a symbolic link to it left in its place."""

    def apply(bundle: Path) -> None:
        elsewhere = bundle.parent / "elsewhere"
        elsewhere.mkdir()
        (bundle / name).rename(elsewhere / name)
        (bundle / name).symlink_to(elsewhere / name)

    return apply


# (id, how the bundle is spoiled, words the error must contain)
CASES = [
    ("samples-file-an-integer", _set("samples", "file", value=5), ["samples.file must be text"]),
    ("samples-file-outside", _set("samples", "file", value="../../etc/passwd"), ["samples.file", "inside"]),
    ("samples-file-absolute", _set("samples", "file", value="/etc/passwd"), ["samples.file", "inside"]),
    ("samples-file-empty", _set("samples", "file", value=""), ["samples.file"]),
    ("samples-sha-an-integer", _set("samples", "sha256", value=12), ["samples.sha256 must be text"]),
    ("samples-rows-text", _set("samples", "rows", value="100"), ["samples.rows must be an integer"]),
    ("samples-rows-boolean", _set("samples", "rows", value=True), ["samples.rows must be an integer"]),
    ("samples-a-string", _set("samples", value="samples.parquet"), ["samples must be a mapping"]),
    ("samples-without-file", _delete("samples", "file"), ["lacks samples.file"]),
    ("hardware-without-cpu-model", _delete("hardware", "cpu_model"), ["lacks hardware.cpu_model"]),
    ("hardware-a-string", _set("hardware", value="a laptop"), ["hardware must be a mapping"]),
    ("hardware-cores-text", _set("hardware", "cpu_cores", value="two"), ["hardware.cpu_cores must be an integer"]),
    ("hardware-cores-boolean", _set("hardware", "cpu_cores", value=True), ["hardware.cpu_cores must be an integer"]),
    ("hardware-gpu-a-string", _set("hardware", "gpu", value="A100"), ["hardware.gpu must be a mapping"]),
    ("hardware-gpu-without-name", _set("hardware", "gpu", value={"memory": 80}), ["lacks hardware.gpu.name"]),
    ("hardware-without-torch", _delete("hardware", "torch"), ["lacks hardware.torch"]),
    ("harness-a-string", _set("harness", value="default"), ["harness must be a mapping"]),
    ("harness-threads-text", _set("harness", "serving_threads", value="two"), ["harness.serving_threads must be an integer"]),
    ("harness-a-list", _set("harness", value=[1, 2]), ["harness must be a mapping"]),
    ("skipped-entry-without-keys", _set("skipped", value=[{"why": "no"}]), ["lacks skipped[0].family"]),
    ("skipped-entry-a-string", _set("skipped", value=["fp16"]), ["skipped[0] must be a mapping"]),
    ("skipped-a-mapping", _set("skipped", value={"fp16": "GPU only"}), ["skipped must be a list"]),
    ("skipped-reason-a-number", _set("skipped", 0, "reason", value=3), ["skipped[0].reason must be text"]),
    ("models-a-mapping", _set("models", value={"mlp": {}}), ["models must be a list"]),
    ("models-family-an-integer", _set("models", 0, "family", value=1), ["models[0].family must be text"]),
    ("models-without-device", _delete("models", 0, "device"), ["lacks models[0].device"]),
    ("models-flops-text", _set("models", 0, "flops_per_sample", value="lots"), ["models[0].flops_per_sample must be a number"]),
    ("models-quality-a-list", _set("models", 0, "quality", value=[0.9]), ["models[0].quality must be a mapping"]),
    ("models-params-fraction", _set("models", 0, "params", value=1.5), ["models[0].params must be an integer"]),
    ("models-family-a-path", _set("models", 0, "family", value="../../x"), ["models[0].family", "path separator"]),
    ("models-family-absolute", _set("models", 0, "family", value="/tmp/x"), ["models[0].family", "path separator"]),
    ("models-variant-dot-dot", _set("models", 0, "variant", value=".."), ["models[0].variant", "names a folder"]),
    ("models-variant-backslash", _set("models", 0, "variant", value="a\\b"), ["models[0].variant", "path separator"]),
    ("models-device-empty", _set("models", 0, "device", value=""), ["models[0].device", "is empty"]),
    ("models-family-escape", _set("models", 0, "family", value="m\x1b[2J"), ["models[0].family", "control character"]),
    ("models-family-nul", _set("models", 0, "family", value="m\x00"), ["models[0].family", "control character"]),
    ("models-family-256-bytes", _set("models", 0, "family", value="é" * 128), ["models[0].family", "256 bytes"]),
    ("metadata-a-link-outside", _link_outside(METADATA_FILE), ["the bundle's metadata lies outside"]),
    ("samples-a-link-outside", _link_outside(SAMPLES_FILE), ["the bundle's samples lies outside"]),
    ("machine-load-a-list", _set("machine_load", value=[1, 2]), ["machine_load must be a mapping"]),
    ("created-an-integer", _set("created_utc", value=2026), ["created_utc must be text"]),
    ("hardware-id-null", _set("hardware_id", value=None), ["hardware_id must be text"]),
    ("format-foreign", _set("format", value="onnx"), ["not a latsim profile bundle"]),
    ("format-version-2", _set("format_version", value=2), ["format version 2"]),
    ("metadata-a-list", _replace_file(METADATA_FILE, b"[1, 2, 3]"), ["not a latsim profile bundle"]),
    ("metadata-empty", _replace_file(METADATA_FILE, b""), ["not valid JSON"]),
    ("metadata-binary", _replace_file(METADATA_FILE, bytes(range(256))), ["not UTF-8"]),
    ("metadata-utf-16", _replace_file(METADATA_FILE, '{"format": "latsim-profile-bundle"}'.encode("utf-16")), ["not UTF-8"]),
    ("metadata-nested-100000", _replace_file(METADATA_FILE, b"[" * 100_000 + b"]" * 100_000), ["not valid JSON"]),
    ("metadata-5000-digits", _replace_file(METADATA_FILE, b'{"format": ' + b"9" * 5000 + b"}"), ["not valid JSON"]),
    ("metadata-a-folder", _special(METADATA_FILE, "folder"), ["metadata.json", "is a folder"]),
    ("metadata-a-fifo", _special(METADATA_FILE, "fifo"), ["metadata.json", "not a regular file"]),
    ("samples-a-folder", _special(SAMPLES_FILE, "folder"), ["samples.parquet", "is a folder"]),
    ("samples-a-fifo", _special(SAMPLES_FILE, "fifo"), ["samples.parquet", "not a regular file"]),
    ("samples-missing", lambda bundle: (bundle / SAMPLES_FILE).unlink(), ["samples.parquet: missing"]),
    ("samples-edited", _replace_file(SAMPLES_FILE, b"not parquet"), ["does not match the sha256"]),
    ("samples-corrupt-with-its-hash", _corrupt_samples_with_matching_hash, ["cannot be read as parquet"]),
]


@pytest.fixture(params=[case[1:] for case in CASES], ids=[case[0] for case in CASES])
def spoiled(request, pristine, tmp_path) -> tuple[Path, list[str]]:
    spoil, needles = request.param
    bundle = tmp_path / "bundle"
    shutil.copytree(pristine, bundle)
    spoil(bundle)
    return bundle, needles


def _scenario(directory: Path) -> Path:
    data = base_scenario()
    data["nodes"][0]["service"] = {"distribution": "profile", "bundle": "bundle", "family": "mlp"}
    return write_scenario(directory, data)


def test_bundle_read_by_run(tmp_path, spoiled):
    """``validate`` builds the service model exactly as ``run`` does before simulating."""
    bundle, needles = spoiled
    assert_clean_error(cli("validate", _scenario(tmp_path), seconds=20), str(bundle), *needles)


def test_bundle_read_by_profile_table(spoiled):
    bundle, needles = spoiled
    assert_clean_error(cli("profile", "--table", bundle, seconds=20), str(bundle), *needles)


def test_the_pristine_bundle_works_in_both(tmp_path, pristine):
    shutil.copytree(pristine, tmp_path / "bundle")
    assert_ok(cli("validate", _scenario(tmp_path)))
    table = cli("profile", "--table", tmp_path / "bundle")
    assert_ok(table)
    assert "| mlp | fp32 |" in table.stdout and "not measured: mlp/fp16" in table.stdout
