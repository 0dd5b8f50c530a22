"""Fit a whole source of measured times — a profile bundle or a samples file — into a fitted-model file.

Per **cell** (family, variant, device, threads, concurrency, stage, batch size: the ``sweep``
samples at concurrency 1, the ``concurrent`` ones above, the ``cold`` ones for load and
first_call) the candidate families are fitted and one is chosen (:func:`select_model`). Per
**group** (family, variant, device, threads, stage) come the batch-size curve of the cells' means
and the throughput-optimal batch size; the service process of the group's ordered ``sequence``
run (autocorrelation, drift, Politis–White block length, 2- and 3-state hidden Markov chains
chosen by BIC, and how much the p99 of an M/G/1 at ρ = 0.7 changes between i.i.d. draws and the
moving-block bootstrap); and the concurrency slowdown f(k) with bootstrap intervals. Every number
is seeded, so the same source and options give the same file, with any ``jobs``.
"""

from __future__ import annotations

import datetime
import math
import os
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from simulator.errors import LatsimError
from simulator.files import make_output_folder, path_component
from simulator.fitting.batch_curve import best_batch_size, fit_batch_curve
from simulator.fitting.candidates import FAMILIES, PVALUE_CAVEAT, QUANTILE_LEVELS, fit_candidates
from simulator.fitting.hmm import fit_lognormal_hmm
from simulator.fitting.process import (
    autocorrelation,
    drift,
    optimal_block_length,
    order_matters,
)
from simulator.fitting.selection import AIC_EQUIVALENCE, ModelSelection, select_model
from simulator.fitting.slowdown import fit_slowdown
from simulator.formats.fitted import (
    EMPIRICAL,
    GROUP_KEYS,
    FittedCell,
    FittedGroup,
    FittedModels,
    FittedProcess,
    FittedSource,
    bundle_cells,
    file_sha256,
    rounded,
)
from simulator.formats.profile_bundle import load_bundle
from simulator.formats.samples import MAX_FILE_BYTES
from simulator.service.distributions import read_service_times

DEFAULT_STAGES = ("end_to_end", "compute", "h2d", "d2h", "load", "first_call")
MIN_FIT_SAMPLES = 20  # fewer samples (e.g. 3 cold starts) are kept as they are: empirical
MIN_PROCESS_SAMPLES = 100  # an ordered run shorter than this says little about its process
MAX_FILE_SAMPLES = 100_000  # of a samples file: its fit (bootstraps, the hidden-Markov search) grows with them, minutes at this size
AUTOCORRELATION_LAGS = 10
HMM_STATES = (2, 3)
CANDIDATE_DIGITS = 4  # one short line per candidate


@dataclass(frozen=True)
class FitSettings:
    """How to fit: which families, the tail check, the process checks and the batch budget."""

    families: tuple[str, ...] = tuple(FAMILIES)
    confidence: float = 0.99
    seed: int = 0
    rho: float = 0.7
    order_replications: int = 10
    order_jobs_per_replication: int = 50_000
    latency_budget_ms: float | None = None
    jobs: int = 1

    def method(self) -> dict[str, Any]:
        """The ``method`` section of the fitted file: enough to redo every number."""
        return {
            "estimation": "maximum likelihood: closed forms or scipy.stats.fit; EM for hyperexponential, lognormal "
            "mixtures and hyper-Erlang phase-type (Thümmler, Buchholz & Telek 2006); fits on data divided by its median",
            "families": list(self.families),
            "selection": f"lowest AIC among the fits whose p99 and p99.9 lie inside the data's {self.confidence:.0%} "
            f"order-statistic intervals (exact, distribution-free), fewer parameters preferred within "
            f"{AIC_EQUIVALENCE:g} AIC; empirical when no family fits the tail",
            "goodness_of_fit": "KS (statistic, p-value) and Anderson–Darling A² against the fitted law. " + PVALUE_CAVEAT,
            "min_samples": MIN_FIT_SAMPLES,
            "batch_curve": "monotone curve of the per-size mean: isotonic piecewise-linear or a + b·B^c, by leave-one-out error",
            "process": f"the ordered sequence run at batch 1: autocorrelation (lags 1-{AUTOCORRELATION_LAGS}), drift "
            "(Theil–Sen on block medians, Kendall test), Politis–White block length, lognormal HMM with "
            f"{' or '.join(map(str, HMM_STATES))} states by BIC; order_matters: p99 sojourn of an M/G/1 at "
            f"rho {self.rho:g}, moving-block bootstrap vs i.i.d. ({self.order_replications} replications × "
            f"{self.order_jobs_per_replication:,} jobs, 95% t interval)",
            "slowdown": "f(k) = mean time with k workers / mean alone at batch 1, 95% bootstrap intervals",
            "seed": self.seed,
        }


@dataclass
class _Work:
    """Everything fitted from one source: the cells to fit, and the samples the groups need."""

    cells: list[tuple[dict[str, Any], str, np.ndarray]] = field(default_factory=list)
    sequences: dict[tuple, np.ndarray] = field(default_factory=dict)


def _candidate_line(fit: Any, best_aic: float | None, fits_tail: bool) -> dict[str, Any]:
    """One candidate as one readable line of the file."""
    if not fit.usable:
        return {"family": fit.family, "usable": False, "note": "; ".join(fit.notes)}
    figures = {
        "delta_aic": fit.aic - best_aic,
        "bic": fit.bic,
        "ks": fit.ks_statistic,
        "ks_p": fit.ks_pvalue,
        "ad": fit.ad_statistic,
        "p99_ms": fit.fitted_quantiles_ms["p99"],
        "p99.9_ms": fit.fitted_quantiles_ms["p99.9"],
    }
    return {"family": fit.family, "k": fit.k, **rounded(figures, CANDIDATE_DIGITS), "tail": fits_tail}


def fit_cell(key: dict[str, Any], mode: str, samples: np.ndarray, settings: FitSettings) -> FittedCell:
    """The fits of one cell: every candidate family, the choice, and why."""
    quantiles = dict(zip(QUANTILE_LEVELS, np.quantile(samples, list(QUANTILE_LEVELS.values())).tolist()))
    common = {**key, "mode": mode, "samples": int(samples.size), "quantiles_ms": quantiles}
    if samples.size < MIN_FIT_SAMPLES or samples.min() == samples.max():
        why = f"{samples.size} samples: too few to fit (at least {MIN_FIT_SAMPLES})" if samples.size < MIN_FIT_SAMPLES else "all samples are equal"
        return FittedCell(**common, chosen=EMPIRICAL, empirical_recommended=True, reason=why, law=None)
    selection: ModelSelection = select_model(samples, list(settings.families), settings.confidence)
    best_aic = min((fit.aic for fit in selection.candidates if fit.usable), default=None)
    return FittedCell(
        **common,
        chosen=EMPIRICAL if selection.empirical_recommended else selection.chosen.family,
        empirical_recommended=selection.empirical_recommended,
        reason=selection.reason,
        law=None if selection.chosen is None else selection.chosen.params,
        tail_intervals_ms={
            level: (low, high if math.isfinite(high) else None) for level, (low, high) in selection.tail_intervals_ms.items()
        },
        candidates=[
            _candidate_line(fit, best_aic, selection.fits_tail.get(fit.family, False)) for fit in selection.candidates
        ],
    )


def fit_process(samples: np.ndarray, settings: FitSettings, mode: str) -> FittedProcess:
    """The service process of one ordered run: dependence, drift, block length, hidden Markov chains, order effect."""
    trend = drift(samples)
    block = optimal_block_length(samples)
    candidates, chosen = [], None
    if np.all(samples > 0):
        for states in HMM_STATES:
            fit = fit_lognormal_hmm(samples, states)
            if not math.isfinite(fit.log_likelihood):  # degenerate runs (all equal but one at the end): no such chain
                continue
            candidates.append(
                {"states": states, "log_likelihood": fit.log_likelihood, "aic": fit.aic, "bic": fit.bic, "converged": fit.converged}
            )
            if chosen is None or fit.bic < chosen.bic:
                chosen = fit
    effect = order_matters(
        samples,
        rho=settings.rho,
        replications=settings.order_replications,
        jobs_per_replication=settings.order_jobs_per_replication,
        seed=settings.seed,
    )
    return FittedProcess(
        source_mode=mode,
        samples=int(samples.size),
        autocorrelation=autocorrelation(samples, min(AUTOCORRELATION_LAGS, samples.size - 1)).tolist(),
        drift={
            "slope_ms_per_sample": trend.slope_ms_per_sample,
            "relative_change": trend.relative_change,
            "half_median_ratio": trend.half_median_ratio,
            "trend_pvalue": trend.trend_pvalue,
        },
        block_length={"moving": block.moving, "stationary": block.stationary},
        hmm=None if chosen is None else chosen.model.to_dict(),
        hmm_candidates=candidates,
        order_matters={
            "rho": effect.utilization,
            "process": f"moving_block (block length {max(1, round(block.moving))})",
            "p99_iid_ms": effect.p99_iid_ms,
            "p99_process_ms": effect.p99_process_ms,
            "relative_difference": effect.relative_difference,
            "ci": [effect.ci_low, effect.ci_high],
            "confidence": effect.confidence,
        },
    )


def _best_batch(curve: Any, budget_ms: float | None) -> dict[str, Any] | None:
    """The throughput-optimal batch size over the measured range, within the budget when one is given."""
    try:
        size = best_batch_size(curve, math.inf if budget_ms is None else budget_ms)
    except ValueError as error:
        return {"latency_budget_ms": budget_ms, "batch_size": None, "note": str(error)}
    time_ms = float(curve.time_ms(size))
    return {"latency_budget_ms": budget_ms, "batch_size": size, "time_ms": time_ms, "throughput_per_s": size / time_ms * 1000.0}


def _group(key: tuple, cells: list[FittedCell], sequence: np.ndarray | None, samples: dict[tuple, np.ndarray], settings: FitSettings) -> FittedGroup:
    """Batch curve, best batch, process and slowdown of one group, from its cells' samples."""
    by_batch = {cell.batch_size: samples[cell.key()] for cell in cells if cell.concurrency == 1}
    curve = None
    if len(by_batch) >= 2 and all(np.all(times > 0) for times in by_batch.values()):
        curve = fit_batch_curve(by_batch)
    concurrent = {cell.concurrency: samples[cell.key()] for cell in cells if cell.concurrency > 1 and cell.batch_size == 1}
    slowdown = None
    if concurrent and 1 in by_batch and all(times.size >= 2 and np.all(times > 0) for times in [by_batch[1], *concurrent.values()]):
        slowdown = fit_slowdown({1: by_batch[1], **concurrent}, seed=settings.seed).to_dict()
    process = None
    if sequence is not None and sequence.size >= MIN_PROCESS_SAMPLES and sequence.min() < sequence.max():
        process = fit_process(sequence, settings, "sequence")
    return FittedGroup(
        **dict(zip(GROUP_KEYS, key)),
        batch_curve=None if curve is None else curve.to_dict(),
        best_batch=None if curve is None else _best_batch(curve, settings.latency_budget_ms),
        process=process,
        slowdown=slowdown,
    )


def _fit_cells(work: Sequence[tuple[dict[str, Any], str, np.ndarray]], settings: FitSettings) -> list[FittedCell]:
    return [fit_cell(key, mode, samples, settings) for key, mode, samples in work]


def _in_parallel(work: list[tuple[dict[str, Any], str, np.ndarray]], settings: FitSettings, progress: Callable[[int], None] | None) -> list[FittedCell]:
    """Fit the cells in ``settings.jobs`` processes (identical results to one process), in chunks for progress."""
    chunk = 8
    pieces = [work[start : start + chunk] for start in range(0, len(work), chunk)]
    fitted: list[FittedCell] = []
    if settings.jobs <= 1:
        for piece in pieces:
            fitted += _fit_cells(piece, settings)
            if progress:
                progress(len(piece))
        return fitted
    with ProcessPoolExecutor(max_workers=settings.jobs) as pool:
        for piece, result in zip(pieces, pool.map(_fit_cells, pieces, [settings] * len(pieces))):
            fitted += result
            if progress:
                progress(len(piece))
    return fitted


def _plot(directory: Path, group: FittedGroup, members: list[FittedCell], samples: dict[tuple, np.ndarray], work: _Work, settings: FitSettings) -> list[Path]:
    """The diagnostics of one group, for its cell at concurrency 1 and the smallest batch size."""
    from simulator.fitting.plots import plot_group

    cell = min(members, key=lambda member: (member.concurrency, member.batch_size))
    times = samples[cell.key()]
    if cell.law is None:
        return []
    prefix = directory / _plot_prefix(group.key(), cell.batch_size)
    fits = fit_candidates(times, list(settings.families))
    return plot_group(prefix, times, fits, cell.chosen, group.curve(), work.sequences.get(group.key()))


def _plot_prefix(group_key: tuple, batch_size: int) -> str:
    """How a group's plot files begin, ``<family>-<variant>-<device>-<threads>-<stage>-b<batch size>``; refused
    (a LatsimError) unless every plot's name is one plain file name, so no name places a plot elsewhere."""
    from simulator.fitting.plots import LONGEST_SUFFIX

    prefix = "-".join(str(part) for part in (*group_key, f"b{batch_size}"))
    path_component(prefix + LONGEST_SUFFIX, "a plot's file name (made of the family, variant, device, threads and stage)")
    return prefix


def _assemble(
    source: FittedSource,
    work: _Work,
    settings: FitSettings,
    progress: Callable[[int], None] | None,
    plots: Path | None = None,
) -> FittedModels:
    if plots is not None:  # every plot's file name is checked before the work starts
        for key, _, _ in work.cells:
            _plot_prefix(tuple(key[name] for name in GROUP_KEYS), key["batch_size"])
    cells = _in_parallel(work.cells, settings, progress)
    samples = {cell.key(): times for cell, (_, _, times) in zip(cells, work.cells)}
    grouped: dict[tuple, list[FittedCell]] = defaultdict(list)
    for cell in cells:
        grouped[tuple(getattr(cell, name) for name in GROUP_KEYS)].append(cell)
    groups = [_group(key, members, work.sequences.get(key), samples, settings) for key, members in grouped.items()]
    if plots is not None:
        make_output_folder(plots)  # only now: a refused name or failed fit leaves no folder behind
        for group, members in zip(groups, grouped.values()):
            _plot(plots, group, members, samples, work, settings)
    return FittedModels(
        created_utc=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        latsim_version=_version(),
        source=source,
        method=settings.method(),
        cells=cells,
        groups=groups,
    )


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("latsim")
    except PackageNotFoundError:
        return "unknown"


def _selected(key: dict[str, Any], filters: dict[str, Iterable[Any] | None]) -> bool:
    return all(allowed is None or key[name] in allowed for name, allowed in filters.items())


def bundle_work(
    frame: Any,
    families: Iterable[str] | None = None,
    variants: Iterable[str] | None = None,
    batch_sizes: Iterable[int] | None = None,
    stages: Iterable[str] | None = None,
    threads: Iterable[int] | None = None,
) -> _Work:
    """The cells of a bundle's samples to fit (filtered), and each group's ordered sequence run."""
    filters = {
        "family": None if families is None else set(families),
        "variant": None if variants is None else set(variants),
        "batch_size": None if batch_sizes is None else set(batch_sizes),
        "stage": set(DEFAULT_STAGES if stages is None else stages),
        "threads": None if threads is None else set(threads),
    }
    work = _Work()
    for key, mode, times in bundle_cells(frame):
        if not _selected(key, filters):
            continue
        cold = key["stage"] in ("load", "first_call")
        if mode == "sequence" and key["batch_size"] == 1 and key["concurrency"] == 1:
            work.sequences[tuple(key[name] for name in GROUP_KEYS)] = times
        elif mode == ("cold" if cold else "concurrent" if key["concurrency"] > 1 else "sweep"):
            work.cells.append((key, mode, times))
    return work


def fit_bundle(
    path: Path,
    settings: FitSettings = FitSettings(),
    families: Iterable[str] | None = None,
    variants: Iterable[str] | None = None,
    batch_sizes: Iterable[int] | None = None,
    stages: Iterable[str] | None = None,
    threads: Iterable[int] | None = None,
    relative_to: Path | None = None,
    progress: Callable[[int], None] | None = None,
    on_work: Callable[[int], None] | None = None,
    plots: Path | None = None,
) -> FittedModels:
    """Fit every selected cell of the profile bundle at ``path`` (threads default to its serving count).

    ``relative_to`` is the folder of the fitted file (the source path is stored relative to it);
    ``on_work`` is told the number of cells before fitting starts, ``progress`` after each chunk;
    ``plots`` is a folder for each group's diagnostic plots.
    """
    bundle = load_bundle(path)
    serving = bundle.metadata["harness"].get("serving_threads")
    available = set(bundle.samples["threads"].unique().tolist())
    if threads is None and serving in available:
        threads = [serving]
    work = bundle_work(bundle.samples, families, variants, batch_sizes, stages, threads)
    if not work.cells:
        raise LatsimError(f"{path}: no cells match the selection (families, variants, batch sizes, stages, threads)")
    if on_work:
        on_work(len(work.cells))
    directory = bundle.path or Path(path)
    source = FittedSource(
        kind="profile_bundle",
        path=_relative(directory, relative_to),
        sha256=bundle.metadata["samples"]["sha256"],
        rows=bundle.metadata["samples"]["rows"],
        hardware_id=bundle.hardware_id,
        serving_threads=serving,
    )
    return _assemble(source, work, settings, progress, plots)


def fit_samples_file(
    path: Path,
    column: str | None = None,
    expression: str | None = None,
    family: str | None = None,
    variant: str = "measured",
    settings: FitSettings = FitSettings(),
    relative_to: Path | None = None,
    plots: Path | None = None,
    progress: Callable[[int], None] | None = None,
    on_work: Callable[[int], None] | None = None,
) -> FittedModels:
    """Fit one column (or expression) of a CSV/parquet file of times, in order, as one cell named ``family``/``variant``.

    The file's order is its process (autocorrelation, drift, block length, hidden Markov chain); it may hold at
    most ``MAX_FILE_SAMPLES`` times.
    """
    family = path_component(family, "family") if family is not None else path_component(
        path.stem, "the samples file's name (the default family; give one)"
    )
    path_component(variant, "variant")
    times = read_service_times(path, column, expression, "fit")
    if times.size > MAX_FILE_SAMPLES:
        raise LatsimError(
            f"fit: {path} holds {times.size:,} times; a samples file is fitted from at most {MAX_FILE_SAMPLES:,} (the fit "
            "grows with them): keep a contiguous stretch of rows, since their order is the process that is fitted"
        )
    if on_work is not None:
        on_work(1)
    key = {"family": family, "variant": variant, "device": "cpu", "threads": 1, "concurrency": 1, "stage": "end_to_end", "batch_size": 1}
    work = _Work(cells=[(key, "samples", times)], sequences={tuple(key[name] for name in GROUP_KEYS): times})
    source = FittedSource(
        kind="samples",
        path=_relative(path, relative_to),
        sha256=file_sha256(path, MAX_FILE_BYTES),
        rows=int(times.size),
        column=column,
        expression=expression,
    )
    return _assemble(source, work, settings, progress, plots)


def _relative(path: Path, folder: Path | None) -> str:
    """``path`` relative to ``folder`` (with .. steps where needed), or as given without a folder."""
    if folder is None:
        return str(path)
    return os.path.relpath(Path(path).resolve(), Path(folder).resolve())

