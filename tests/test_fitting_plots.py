"""Diagnostic plots are written as PNG files, atomically, and overwrite an older file."""

from __future__ import annotations

import numpy as np
import pytest

from simulator.fitting import fit_batch_curve, fit_candidates, plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def samples() -> np.ndarray:
    return np.random.default_rng(0).lognormal(0.0, 0.4, 2000)


def test_every_plot_writes_a_png_and_leaves_no_partial_file(tmp_path, samples):
    fits = fit_candidates(samples, ["lognormal", "gamma", "exponential"])
    curve = fit_batch_curve({1: [2.0, 2.1], 4: [3.0, 3.2], 16: [7.0, 7.4], 64: [20.0, 21.0]})
    (tmp_path / "tail.png").write_bytes(b"old")
    written = [
        plots.plot_fit_histogram(samples, fits, tmp_path / "histogram.png"),
        plots.plot_qq(samples, fits[0], tmp_path / "qq.png"),
        plots.plot_tail(samples, fits, tmp_path / "tail.png"),
        plots.plot_batch_curve(curve, tmp_path / "batch.png"),
        plots.plot_autocorrelation(samples, tmp_path / "acf.png"),
    ]
    for path in written:
        assert path.read_bytes().startswith(PNG_MAGIC) and path.stat().st_size > 10_000
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in written)


def test_importing_the_plot_module_does_not_import_matplotlib():
    import subprocess
    import sys

    code = (
        "import sys, simulator; before = set(sys.modules); import simulator.fitting.plots; "
        "print(sorted(m for m in set(sys.modules) - before if m.startswith('matplotlib')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
