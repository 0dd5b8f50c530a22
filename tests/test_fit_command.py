"""``latsim fit`` and the ``fitted`` service model, on a small synthetic profile bundle.

The bundle holds one model whose times are lognormal (so the fit is checkable) at batch sizes 1,
4 and 16, a concurrent run, cold starts, and an ordered run with slow and fast stretches.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from simulator import run, scenario_from_dict
from simulator.cli import app
from simulator.errors import ScenarioError
from simulator.formats.fitted import FittedFileError, read_fitted
from simulator.formats.profile_bundle import load_bundle, write_bundle
from simulator.registry import SERVICE_MODELS
from simulator.service.base import build_service_model
from tests.helpers import base_scenario

MEANS_MS = {1: 2.0, 4: 3.0, 16: 7.0}
SIGMA = 0.2


def _rows(stage: str, batch_size: int, times: np.ndarray, mode: str = "sweep", concurrency: int = 1) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "family": "mlp", "variant": "fp32", "device": "cpu", "dtype": "float32", "batch_size": batch_size, "threads": 1,
            "concurrency": concurrency, "mode": mode, "stage": stage, "worker": 0, "sample_index": np.arange(times.size),
            "timestamp_ns": np.arange(times.size) * 1_000_000, "latency_ms": times,
        }
    )


def _lognormal(rng: np.random.Generator, mean_ms: float, size: int) -> np.ndarray:
    return rng.lognormal(np.log(mean_ms) - SIGMA**2 / 2, SIGMA, size)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory) -> Path:
    """A bundle in ``<tmp>/zoo`` and its fitted file ``<tmp>/fitted/mlp.yaml`` (made by the command)."""
    root = tmp_path_factory.mktemp("fit")
    rng = np.random.default_rng(0)
    frames = [_rows("end_to_end", b, _lognormal(rng, mean, 300)) for b, mean in MEANS_MS.items()]
    frames.append(_rows("end_to_end", 1, _lognormal(rng, 5.0, 300), "concurrent", 2))
    frames.append(_rows("load", 1, np.array([40.0, 42.0, 45.0]), "cold"))
    stretches = np.where((np.arange(600) // 60) % 2 == 0, 1.0, 3.0) * _lognormal(rng, 1.0, 600)
    frames.append(_rows("end_to_end", 1, stretches, "sequence"))
    metadata = {
        "hardware_id": "cpu-test", "created_utc": "2026-01-01T00:00:00+00:00",
        "hardware": {"cpu_model": "test", "cpu_cores": 2, "torch": "none"}, "harness": {"serving_threads": 1},
        "models": [{"family": "mlp", "variant": "fp32", "device": "cpu"}],
    }
    write_bundle(root / "zoo", pd.concat(frames, ignore_index=True), metadata)
    (root / "fitted").mkdir()
    result = CliRunner().invoke(app, ["fit", str(root / "zoo"), "--out", str(root / "fitted" / "mlp.yaml"), "--plots", str(root / "plots"), "--latency-budget-ms", "5"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    (root / "fitted" / "output.txt").write_text(result.output)
    return root


def test_the_fitted_file_records_source_method_cells_and_groups(fitted):
    models = read_fitted(fitted / "fitted" / "mlp.yaml")
    bundle = load_bundle(fitted / "zoo")
    assert models.source.sha256 == bundle.metadata["samples"]["sha256"] and models.source.path == "../zoo"
    assert "optimistic" in models.method["goodness_of_fit"] and models.method["families"]
    cells = {(c.stage, c.concurrency, c.batch_size): c for c in models.cells}
    assert set(cells) == {("end_to_end", 1, 1), ("end_to_end", 1, 4), ("end_to_end", 1, 16), ("end_to_end", 2, 1), ("load", 1, 1)}
    assert cells[("load", 1, 1)].chosen == "empirical" and "too few" in cells[("load", 1, 1)].reason
    first = cells[("end_to_end", 1, 1)]
    assert first.samples == 300 and len(first.candidates) == 10 and first.chosen != "empirical"
    assert {"delta_aic", "bic", "ks", "ks_p", "ad", "p99_ms", "p99.9_ms", "tail"} <= set(first.candidates[0])
    group = next(g for g in models.groups if g.stage == "end_to_end")
    assert group.batch_curve["measured_sizes"] == [1, 4, 16]
    assert group.best_batch["latency_budget_ms"] == 5 and group.best_batch["batch_size"] <= 16
    assert group.process.autocorrelation[0] > 0.5 and len(group.process.hmm["mu_log"]) in (2, 3)
    assert group.process.order_matters["ci"][0] > 0  # the stretches make the p99 worse than i.i.d. draws
    assert group.slowdown["concurrency"] == [1, 2] and group.slowdown["factor"][1] == pytest.approx(2.5, rel=0.1)
    text = (fitted / "fitted" / "mlp.yaml").read_text()
    assert "\n  - {family: mlp_" not in text and "  - {family: lognormal, k: 2, delta_aic:" in text  # a line per candidate
    output = (fitted / "fitted" / "output.txt").read_text()
    assert "mlp/fp32" in output and "order: Δp99" in output and "optimistic" in output and "wrote" in output
    assert sorted(path.name.rsplit("-", 1)[-1] for path in (fitted / "plots").glob("*end_to_end*")) == [
        "autocorrelation.png", "curve.png", "histogram.png", "qq.png", "tail.png",
    ]


def test_the_fit_recovers_the_lognormal_it_was_made_from(fitted):
    cell = next(c for c in read_fitted(fitted / "fitted" / "mlp.yaml").cells if c.batch_size == 4)
    law = cell.distribution()
    assert law.mean() == pytest.approx(MEANS_MS[4], rel=0.05)
    assert law.var() ** 0.5 / law.mean() == pytest.approx(np.sqrt(np.exp(SIGMA**2) - 1), rel=0.25)


def _fitted_model(fitted: Path, **settings):
    config = SERVICE_MODELS.validate({"distribution": "fitted", "file": "fitted/mlp.yaml", "family": "mlp", **settings})
    return build_service_model(config, fitted)


def test_the_fitted_model_goes_through_the_batch_curve_and_refuses_outside_it(fitted):
    built = _fitted_model(fitted)
    means = [built.mean_ms(b) for b in (1, 2, 4, 8, 16)]
    assert means == sorted(means) and means[0] == pytest.approx(2.0, rel=0.05) and means[-1] == pytest.approx(7.0, rel=0.05)
    assert _fitted_model(fitted, batch_size=4).mean_ms(4) == pytest.approx(means[-1])  # 4 requests of 4 items
    with pytest.raises(ScenarioError, match=r"batch size 32 is outside the measured range \[1, 16\]"):
        built.mean_ms(32)
    with pytest.raises(ScenarioError, match=r"has no concurrency 4; it has \[1, 2\]"):
        _fitted_model(fitted, concurrency=4)
    with pytest.raises(ScenarioError, match="no family 'cnn'"):
        _fitted_model(fitted, family="cnn")
    concurrent = _fitted_model(fitted, concurrency=2)
    assert concurrent.mean_ms(1) == pytest.approx(5.0, rel=0.05)
    with pytest.raises(ScenarioError, match=r"fitted at batch sizes \[1\] only"):
        concurrent.mean_ms(2)


def test_choices_and_processes_draw_the_law_the_samples_or_the_chain(fitted):
    samples = load_bundle(fitted / "zoo").samples
    measured = set(samples[(samples["mode"] == "sweep") & (samples["batch_size"] == 1)]["latency_ms"])
    measured = np.array(sorted(measured))

    def nearest_relative_gap(times: np.ndarray) -> np.ndarray:
        index = np.clip(np.searchsorted(measured, times), 1, measured.size - 1)
        return np.minimum(abs(measured[index] - times), abs(measured[index - 1] - times)) / times

    empirical = _fitted_model(fitted, choice="empirical").draw_block(np.random.default_rng(0), 200)
    assert np.all(nearest_relative_gap(empirical) < 1e-9)  # the samples, scaled onto the curve (a factor 1 here)
    law = _fitted_model(fitted, choice="fit").draw_block(np.random.default_rng(0), 200)
    assert np.median(nearest_relative_gap(law)) > 1e-9
    hmm = _fitted_model(fitted, process="hmm")
    assert hmm.ordered and hmm.mean_ms() == pytest.approx(_fitted_model(fitted).mean_ms())
    blocks = _fitted_model(fitted, process={"kind": "moving_block", "block_length": 50})
    assert np.all(nearest_relative_gap(blocks.draw_block(np.random.default_rng(1), 500)) < 1e-9)
    with pytest.raises(ValueError, match="cannot go with choice: fit"):
        SERVICE_MODELS.validate({"distribution": "fitted", "file": "f", "family": "mlp", "choice": "fit", "process": "replay"})
    data = base_scenario()
    data["nodes"][0]["service"] = {"distribution": "fitted", "file": "fitted/mlp.yaml", "family": "mlp", "process": "hmm"}
    result = run(scenario_from_dict(data, base_dir=fitted), replications=2, requests=4000)
    assert result.ok and result.summary["classes"]["a"]["service_ms"]["mean"]["estimate"] == pytest.approx(2.0, rel=0.15)


def test_a_changed_or_missing_bundle(fitted, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(fitted, copy)
    metadata = json.loads((copy / "zoo" / "metadata.json").read_text())
    frame = load_bundle(copy / "zoo").samples
    frame.loc[0, "latency_ms"] *= 2
    write_bundle(copy / "zoo", frame, {k: v for k, v in metadata.items() if k not in ("format", "format_version", "samples")})
    with pytest.raises(ScenarioError, match=r"was fitted from .*zoo with content sha256 .* but it now holds .*refit"):
        _fitted_model(copy)
    shutil.rmtree(copy / "zoo")
    assert _fitted_model(copy, choice="fit").mean_ms() == pytest.approx(_fitted_model(fitted, choice="fit").mean_ms())  # no bundle needed
    with pytest.raises(ScenarioError, match="draws the measured samples of .*zoo.*which is not there"):
        _fitted_model(copy, choice="empirical")


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        (lambda d: d["cells"][0]["law"].update(family="nonsense"), "cells[0].law: Value error, not a valid distribution"),
        (lambda d: d["cells"][1].update(samples=-1), "cells[1].samples"),
        (lambda d: d["groups"][0]["process"].update(hmm={"family": "lognormal_hmm", "transition": [[2]], "mu_log": [0], "sigma_log": [1]}), "groups[0].process.hmm"),
        (lambda d: d.update(format_version=7), "format version 7"),
        (lambda d: d["source"].update(sha256="abc"), "source.sha256"),
        (lambda d: d.pop("cells"), "cells: Field required"),
        (lambda d: d["method"].update(note=[1.0, float("nan")]), "method.note[1] is not a finite number"),
    ],
    ids=["law", "samples", "hmm", "version", "hash", "missing", "nan"],
)
def test_an_edited_fitted_file_is_refused_naming_file_and_key(fitted, tmp_path, edit, needle):
    data = yaml.safe_load((fitted / "fitted" / "mlp.yaml").read_text())
    edit(data)
    path = tmp_path / "edited.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(FittedFileError) as refused:
        read_fitted(path)
    assert str(path) in str(refused.value) and needle in str(refused.value), str(refused.value)


def test_a_fit_with_a_non_finite_value_writes_nothing(fitted, tmp_path):
    """A value no reader would accept (NaN where the file holds free-form numbers) stops the write: no file at all."""
    from simulator.formats.fitted import write_fitted

    models = read_fitted(fitted / "fitted" / "mlp.yaml")
    broken = models.model_copy(update={"method": {**models.method, "note": float("inf")}})
    path = tmp_path / "out.yaml"
    with pytest.raises(FittedFileError, match=r"method.note is not a finite number; not written"):
        write_fitted(path, broken)
    assert not path.exists() and not list(tmp_path.iterdir())


def test_aliases_and_foreign_files_are_refused(tmp_path):
    path = tmp_path / "f.yaml"
    path.write_text("format: latsim-fitted-models\nformat_version: 1\na: &x [1, 2]\nb: *x\n")
    with pytest.raises(FittedFileError, match="aliases"):
        read_fitted(path)
    path.write_text("format: something\n")
    with pytest.raises(FittedFileError, match="not a latsim fitted-model file"):
        read_fitted(path)


def test_fit_of_a_samples_file_is_one_cell_with_its_process(tmp_path):
    rng = np.random.default_rng(3)
    pd.DataFrame({"latency_ms": 2 + rng.gamma(2.0, 1.0, 400), "service_ms": np.full(400, 1.5)}).to_csv(tmp_path / "t.csv", index=False)
    out = tmp_path / "t.yaml"
    result = CliRunner().invoke(app, ["fit", str(tmp_path / "t.csv"), "--expression", "latency_ms - service_ms", "--family", "svc", "--candidates", "gamma,shifted_exponential,lognormal3", "--out", str(out)])
    assert result.exit_code == 0, result.output
    models = read_fitted(out)
    assert models.source.kind == "samples" and models.source.expression == "latency_ms - service_ms"
    assert [c.family for c in models.cells] == ["svc"] and models.groups[0].process is not None
    config = SERVICE_MODELS.validate({"distribution": "fitted", "file": "t.yaml", "family": "svc", "choice": "empirical"})
    assert build_service_model(config, tmp_path).mean_ms() == pytest.approx(2.5, rel=0.1)


def test_fit_refuses_bad_options_cleanly(fitted, tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["fit", str(fitted / "zoo"), "--out", str(tmp_path / "x.yaml"), "--candidates", "gamma,normal"])
    assert result.exit_code == 2 and "unknown families ['normal']" in result.output
    result = runner.invoke(app, ["fit", str(fitted / "zoo"), "--out", str(tmp_path / "x.yaml"), "--family", "cnn"])
    assert result.exit_code == 2 and "no cells match" in result.output
    result = runner.invoke(app, ["fit", str(tmp_path / "none"), "--out", str(tmp_path / "x.yaml")])
    assert result.exit_code == 2


def test_fit_prints_progress_lines_outside_a_terminal(fitted, tmp_path, monkeypatch):
    """Without a terminal (a log, CI) there is no live bar: lines say how many cells are done, never past their total."""
    import simulator.cli
    from tests.test_progress import assert_never_past_total

    monkeypatch.setattr(simulator.cli, "PROGRESS_LINE_EVERY_S", 0.0)
    result = CliRunner().invoke(app, ["fit", str(fitted / "zoo"), "--out", str(tmp_path / "x.yaml")], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert re.search(r"fitting .*: \d+ cells in all", result.stderr), result.stderr
    assert_never_past_total(result.stderr)
