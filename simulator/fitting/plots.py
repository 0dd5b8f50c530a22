"""Diagnostic plots of fits, as PNG files: histogram with fitted densities, QQ, tail, batch curve, autocorrelation.

matplotlib is imported inside each function and figures are drawn on a ``Figure`` with the Agg
canvas (never pyplot), so importing latsim stays light and plotting works headless. Each file is
written atomically (:func:`simulator.files.write_atomically`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

from simulator.files import write_atomically
from simulator.fitting._validation import validated_samples
from simulator.fitting.batch_curve import BatchCurve
from simulator.fitting.candidates import FitResult
from simulator.fitting.process import autocorrelation

if TYPE_CHECKING:
    from matplotlib.axes import Axes

FIGURE_SIZE_IN = (7.0, 4.5)
DPI = 110
LONGEST_SUFFIX = "-autocorrelation.png"  # the longest ending plot_group gives a file name


def _save(path: str | os.PathLike[str], title: str, xlabel: str, ylabel: str, draw: Callable[[Axes], None]) -> Path:
    """Draw one figure and write it atomically."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from simulator.report.render import literal_text

    target = Path(path)
    figure = Figure(figsize=FIGURE_SIZE_IN, dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    draw(axes)
    axes.set_title(title)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.grid(True, alpha=0.3)
    if axes.get_legend_handles_labels()[0]:
        axes.legend(loc="best", fontsize="small")
    literal_text(axes)
    write_atomically(target, lambda temporary: figure.savefig(temporary, format="png"))
    return target


def _usable(fits: Sequence[FitResult]) -> list[FitResult]:
    return [fit for fit in fits if fit.usable]


def plot_fit_histogram(samples_ms: ArrayLike, fits: Sequence[FitResult], path: str | os.PathLike[str]) -> Path:
    """Density histogram of the samples (up to their p99.9) with each usable fit's pdf over it."""
    samples = validated_samples(samples_ms)
    upper = float(np.quantile(samples, 0.999))
    grid = np.linspace(max(samples.min(), 0.0), upper, 400)

    def draw(axes: Axes) -> None:
        axes.hist(samples[samples <= upper], bins=80, density=True, alpha=0.35, color="grey", label="samples")
        for fit in _usable(fits):
            axes.plot(grid, fit.distribution().pdf(grid), label=f"{fit.family} (AIC {fit.aic:.1f})")

    return _save(path, "Service time and fitted densities", "time (ms)", "density (1/ms)", draw)


def plot_qq(samples_ms: ArrayLike, fit: FitResult, path: str | os.PathLike[str], points: int = 400) -> Path:
    """Fitted quantiles against sample quantiles at ``points`` levels; the diagonal is a perfect fit."""
    samples = validated_samples(samples_ms)
    levels = (np.arange(points) + 0.5) / points
    empirical = np.quantile(samples, levels)
    fitted = fit.distribution().ppf(levels)

    def draw(axes: Axes) -> None:
        axes.plot(fitted, empirical, ".", markersize=3, label=fit.family)
        ends = [min(fitted.min(), empirical.min()), max(fitted.max(), empirical.max())]
        axes.plot(ends, ends, color="black", linewidth=0.8, label="y = x")

    return _save(path, f"QQ plot: {fit.family}", "fitted quantile (ms)", "sample quantile (ms)", draw)


def plot_tail(samples_ms: ArrayLike, fits: Sequence[FitResult], path: str | os.PathLike[str]) -> Path:
    """Log survival P(X > x) of the samples against each usable fit's, where tails are judged."""
    samples = np.sort(validated_samples(samples_ms))
    survival = 1.0 - np.arange(1, samples.size + 1) / (samples.size + 1)
    grid = np.linspace(samples[0], samples[-1], 400)

    def draw(axes: Axes) -> None:
        axes.step(samples, survival, where="post", color="black", label="samples")
        for fit in _usable(fits):
            axes.plot(grid, fit.distribution().sf(grid), label=fit.family)
        axes.set_yscale("log")
        axes.set_ylim(bottom=0.5 / samples.size)

    return _save(path, "Tail: survival function", "time (ms)", "P(X > x)", draw)


def plot_batch_curve(curve: BatchCurve, path: str | os.PathLike[str]) -> Path:
    """Measured per-size statistic and the fitted monotone curve across the measured range."""
    sizes = np.linspace(curve.min_batch_size, curve.max_batch_size, 300)

    def draw(axes: Axes) -> None:
        axes.plot(curve.measured_sizes, curve.measured_ms, "o", label=f"measured {curve.statistic}")
        axes.plot(sizes, curve.time_ms(sizes), label=f"fit ({curve.kind})")

    return _save(path, f"Batch size vs {curve.statistic} time", "batch size", "time (ms)", draw)


def plot_autocorrelation(samples_ms: ArrayLike, path: str | os.PathLike[str], max_lag: int = 50) -> Path:
    """Lag-k autocorrelation with the ±2/√n band within which i.i.d. data would fall."""
    samples = validated_samples(samples_ms)
    lags = min(max_lag, samples.size - 1)
    correlation = autocorrelation(samples, lags)
    band = 2 / np.sqrt(samples.size)

    def draw(axes: Axes) -> None:
        axes.bar(np.arange(1, lags + 1), correlation, width=0.6, label="autocorrelation")
        axes.axhspan(-band, band, color="grey", alpha=0.2, label="±2/√n")

    return _save(path, "Service-time autocorrelation", "lag (requests)", "correlation", draw)


def plot_group(
    prefix: str | os.PathLike[str],
    samples_ms: ArrayLike,
    fits: Sequence[FitResult],
    chosen: str,
    curve: BatchCurve | None,
    sequence_ms: ArrayLike | None,
    top: int = 4,
) -> list[Path]:
    """Every diagnostic of one fitted group, as ``<prefix>-<kind>.png``: histogram with the ``top`` fits'
    densities (by AIC), QQ of the chosen fit, tail, batch curve and the ordered run's autocorrelation."""
    best = sorted(_usable(fits), key=lambda fit: fit.aic)[:top]
    shown = next((fit for fit in best if fit.family == chosen), best[0] if best else None)
    paths = [plot_fit_histogram(samples_ms, best, f"{prefix}-histogram.png"), plot_tail(samples_ms, best, f"{prefix}-tail.png")]
    if shown is not None:
        paths.append(plot_qq(samples_ms, shown, f"{prefix}-qq.png"))
    if curve is not None:
        paths.append(plot_batch_curve(curve, f"{prefix}-batch-curve.png"))
    if sequence_ms is not None:
        paths.append(plot_autocorrelation(sequence_ms, f"{prefix}-autocorrelation.png"))
    return paths
