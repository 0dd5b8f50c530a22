"""What ``latsim fit`` prints: one row per fitted group, at its smallest fitted batch size, as a DataFrame."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from simulator.formats.fitted import EMPIRICAL, FittedCell, FittedGroup, FittedModels

if TYPE_CHECKING:
    import pandas as pd


def _representative(models: FittedModels, group: FittedGroup) -> FittedCell:
    """The group's cell at concurrency 1 and its smallest batch size."""
    members = [cell for cell in models.cells if models.group(cell) is group and cell.concurrency == 1]
    members = members or [cell for cell in models.cells if models.group(cell) is group]
    return min(members, key=lambda cell: (cell.batch_size, cell.concurrency))


def _interval(low: float, high: float | None, digits: int = 3) -> str:
    return f"[{low:.{digits}g}, {'∞' if high is None else f'{high:.{digits}g}'}]"


def _chosen_fit(cell: FittedCell) -> dict[str, Any] | None:
    family = cell.chosen if cell.chosen != EMPIRICAL else None
    best = family or next((line["family"] for line in cell.candidates if line.get("usable", True)), None)
    return next((line for line in cell.candidates if line["family"] == best), None)


def group_row(models: FittedModels, group: FittedGroup) -> dict[str, Any]:
    """The figures of one group that a person reads first: its choice, tail, batch curve, process and slowdown."""
    cell = _representative(models, group)
    fit = _chosen_fit(cell)
    tail = cell.tail_intervals_ms
    process, best, slowdown = group.process, group.best_batch, group.slowdown
    order = None if process is None else process.order_matters
    return {
        "cell": f"{group.family}/{group.variant} {group.device} t{group.threads} {group.stage} b{cell.batch_size}",
        "n": cell.samples,
        "chosen": cell.chosen + ("" if fit is None or cell.chosen != EMPIRICAL else f" (best: {fit['family']})"),
        "p99 ms [CI]": f"{cell.quantiles_ms['p99']:.3g}" + ("" if tail is None else f" {_interval(*tail['p99'])}"),
        "fit p99": None if fit is None else fit["p99_ms"],
        "KS / AD": "" if fit is None else f"{fit['ks']:.2g} / {fit['ad']:.2g}",
        "best batch": "" if best is None or best.get("batch_size") is None else f"{best['batch_size']} ({best['throughput_per_s']:.3g}/s)",
        "lag-1": None if process is None else process.autocorrelation[0],
        "order: Δp99 [CI]": "" if order is None else f"{order['relative_difference']:+.0%} [{order['ci'][0]:+.0%}, {order['ci'][1]:+.0%}]",
        "slowdown f(k) [CI]": "" if slowdown is None else "; ".join(
            f"{k}: {factor:.2f} {_interval(low, high)}"
            for k, factor, low, high in zip(slowdown["concurrency"], slowdown["factor"], slowdown["ci_low"], slowdown["ci_high"])
            if k > 1
        ),
    }


def fitted_summary(models: FittedModels) -> pd.DataFrame:
    """One row per group (:func:`group_row`), in file order."""
    import pandas as pd

    return pd.DataFrame([group_row(models, group) for group in models.groups])


def choice_counts(models: FittedModels) -> str:
    """How often each model was chosen over all cells, e.g. ``300 cells: empirical 110, lognormal3 32, ...``."""
    counts = Counter(cell.chosen for cell in models.cells)
    return f"{len(models.cells)} cells: " + ", ".join(f"{name} {count}" for name, count in counts.most_common())
