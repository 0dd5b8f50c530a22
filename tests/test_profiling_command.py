"""``latsim profile`` as a user types it: a quick zoo run, a user model, the table, clear errors."""

from __future__ import annotations

import textwrap

import pytest

pytestmark = pytest.mark.profiling
from typer.testing import CliRunner

from simulator.cli import app
from simulator.formats.profile_bundle import load_bundle

runner = CliRunner()

FAST = ["--quick", "--batch-sizes", "1,2", "--threads", "1", "--concurrency", "1", "--no-progress"]
WIDE = {"COLUMNS": "300"}  # rich wraps error boxes to the terminal width


def test_quick_zoo_run_writes_a_bundle_and_prints_its_table(tmp_path):
    pytest.importorskip("torch")
    out = tmp_path / "profiles"
    args = ["profile", "--family", "mlp", "--variant", "fp32,pruned", "--zoo-size", "tiny", "--out", str(out)]
    result = runner.invoke(app, [*args, *FAST])
    assert result.exit_code == 0, result.output
    (bundle_dir,) = out.glob("cpu-*/zoo")
    bundle = load_bundle(bundle_dir)
    assert set(bundle.samples["variant"]) == {"fp32", "pruned"}
    assert bundle.metadata["source"]["size"] == "tiny"
    assert bundle.metadata["command"].startswith("latsim profile")
    assert "| mlp | fp32 |" in result.stdout and "| mlp | pruned |" in result.stdout

    table = runner.invoke(app, ["profile", "--table", str(bundle_dir), "--threads", "1"])
    assert table.exit_code == 0
    assert "with 1 intra-op thread(s)" in table.stdout
    assert table.stdout.splitlines()[2].startswith("| family | variant | params |")
    missing = runner.invoke(app, ["profile", "--table", str(bundle_dir), "--threads", "3"], env=WIDE)
    assert missing.exit_code == 2 and "no sweep samples of stage 'end_to_end' with 3 threads" in missing.stderr


def test_production_families_profile_into_a_named_bundle_with_agreement_as_quality(tmp_path):
    pytest.importorskip("torch")
    out = tmp_path / "profiles"
    args = ["profile", "--family", "resnet50,lstm", "--variant", "fp32,int8", "--zoo-size", "tiny"]
    result = runner.invoke(app, [*args, "--name", "production", "--seq-len", "16", "--out", str(out), *FAST])
    assert result.exit_code == 0, result.output
    (bundle_dir,) = out.glob("cpu-*/production")
    bundle = load_bundle(bundle_dir)
    assert set(bundle.samples["family"]) == {"resnet50", "lstm"}
    quality = {(m["family"], m["variant"]): m["quality"] for m in bundle.metadata["models"]}
    assert quality[("resnet50", "int8")]["accuracy"] is None  # untrained: only agreement means something
    assert 0.0 < quality[("resnet50", "int8")]["agreement_with_fp32"] <= 1.0
    assert quality[("lstm", "int8")]["accuracy"] is not None  # the LSTM learns the motif task
    assert "| resnet50 | int8 |" in result.stdout


def test_user_factory_model_from_the_command_line(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    (tmp_path / "cli_models.py").write_text(
        textwrap.dedent(
            """
            import torch

            def embedder():
                return torch.nn.Sequential(torch.nn.Embedding(50, 8), torch.nn.Flatten(), torch.nn.Linear(32, 2))
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    args = ["profile", "--model", "cli_models:embedder", "--input-shape", "1,4", "--input-dtype", "int64"]
    args += ["--input-high", "50", "--variant", "fp32", "--out", str(tmp_path / "p"), *FAST]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    (bundle_dir,) = (tmp_path / "p").glob("cpu-*/cli_models-embedder")
    assert load_bundle(bundle_dir).metadata["source"]["factory"] == "cli_models:embedder"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--family", "rnn"], "unknown families ['rnn']"),
        (["--variant", "int4"], "unknown variants ['int4']"),
        (["--model", "x:y", "--model-file", "m.pt2", "--input-shape", "1,2"], "either --model or --model-file"),
        (["--model", "mymod:build"], "needs --input-shape"),
        (["--input-shape", "1,2"], "give --model or --model-file too"),
        (["--table", "no/such/bundle"], "no such profile bundle directory"),
    ],
)
def test_mistakes_are_reported_without_a_traceback(args, message, tmp_path):
    pytest.importorskip("torch")
    result = runner.invoke(app, ["profile", *args, "--out", str(tmp_path), "--no-progress"], env=WIDE)
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_bad_integer_lists_are_rejected_by_the_parser():
    result = runner.invoke(app, ["profile", "--batch-sizes", "1,zero"], env=WIDE)
    assert result.exit_code == 2 and "comma-separated positive integers" in result.output
