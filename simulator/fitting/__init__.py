"""Fit service-time models from profiles: distributions, processes, batch and concurrency scaling, overhead.

Numerical functions (numpy/scipy), and :func:`fit_bundle` / :func:`fit_samples_file`, which fit a
whole source into a fitted-model file (``latsim fit``); plots live in :mod:`simulator.fitting.plots`.
"""

from simulator.fitting.batch_curve import BatchCurve, best_batch_size, fit_batch_curve
from simulator.fitting.candidates import FAMILIES, FitResult, fit_candidates, fit_family
from simulator.fitting.fitted_models import FitSettings, fit_bundle, fit_samples_file
from simulator.fitting.overhead import (
    DistributionOverhead,
    FixedOverhead,
    OccupancyOverhead,
    fit_overhead,
    overhead_from_dict,
)
from simulator.fitting.process import (
    LognormalHMM,
    MovingBlockBootstrap,
    StationaryBootstrap,
    autocorrelation,
    drift,
    fit_lognormal_hmm,
    optimal_block_length,
    order_matters,
)
from simulator.fitting.selection import ModelSelection, select_model, tail_intervals
from simulator.fitting.slowdown import Slowdown, fit_slowdown, fit_slowdown_by_batch

__all__ = [
    "FAMILIES",
    "BatchCurve",
    "DistributionOverhead",
    "FitResult",
    "FitSettings",
    "FixedOverhead",
    "LognormalHMM",
    "ModelSelection",
    "MovingBlockBootstrap",
    "OccupancyOverhead",
    "Slowdown",
    "StationaryBootstrap",
    "autocorrelation",
    "best_batch_size",
    "drift",
    "fit_bundle",
    "fit_batch_curve",
    "fit_candidates",
    "fit_family",
    "fit_lognormal_hmm",
    "fit_overhead",
    "fit_samples_file",
    "fit_slowdown",
    "fit_slowdown_by_batch",
    "optimal_block_length",
    "order_matters",
    "overhead_from_dict",
    "select_model",
    "tail_intervals",
]
