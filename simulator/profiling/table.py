"""The measured table of docs/profiles.md: per family x variant, latency at batch 1 and at the batch size of
best throughput, with the model's size and quality cost. Reads a bundle; needs no torch."""

from __future__ import annotations

import pandas as pd

from simulator.errors import ProfileBundleError
from simulator.formats.profile_bundle import ProfileBundle
from simulator.units import MS_PER_S


def default_table_threads(bundle: ProfileBundle) -> int:
    """The serving thread count if the sweep measured it, else the largest thread count it measured."""
    measured = bundle.samples.loc[bundle.samples["mode"] == "sweep", "threads"].unique().tolist()
    serving = bundle.metadata["harness"].get("serving_threads")
    return serving if serving in measured or not measured else max(measured)


def latency_summary(bundle: ProfileBundle, stage: str = "end_to_end", threads: int | None = None) -> pd.DataFrame:
    """One row per (family, variant, device): median and p99 at batch 1 and at the best-throughput batch.

    Uses the ``sweep`` samples (back-to-back calls, one worker) taken with ``threads`` intra-op
    threads (default: :func:`default_table_threads`). Throughput is batch size / median.
    """
    threads = threads or default_table_threads(bundle)
    sweep = bundle.samples.query("mode == 'sweep' and stage == @stage and threads == @threads")
    if sweep.empty:
        measured = bundle.samples.query("mode == 'sweep'")
        raise ProfileBundleError(
            f"{bundle.path}: no sweep samples of stage {stage!r} with {threads} threads; it has threads "
            f"{sorted(measured['threads'].unique().tolist())} and stages {sorted(measured['stage'].unique().tolist())}"
        )
    cells = (
        sweep.groupby(["family", "variant", "device", "batch_size"])["latency_ms"]
        .agg(median_ms="median", p99_ms=lambda x: x.quantile(0.99), samples="size")
        .reset_index()
    )
    cells["throughput_per_s"] = cells["batch_size"] / cells["median_ms"] * MS_PER_S
    order = {(m["family"], m["variant"], m["device"]): i for i, m in enumerate(bundle.metadata["models"])}
    rows = []
    groups = cells.groupby(["family", "variant", "device"])
    for family, variant, device in sorted(groups.groups, key=lambda key: order.get(key, len(order))):
        group = groups.get_group((family, variant, device))
        first = group.loc[group["batch_size"].idxmin()]
        best = group.loc[group["throughput_per_s"].idxmax()]
        info = bundle.model_info(family, variant, device) or {}
        quality = info.get("quality") or {}
        rows.append(
            {
                "family": family,
                "variant": variant,
                "device": device,
                "params": info.get("params"),
                "mflops_per_sample": (info["flops_per_sample"] / 1e6) if info.get("flops_per_sample") else None,
                "accuracy": quality.get("accuracy"),
                "agreement_with_fp32": quality.get("agreement_with_fp32"),
                "batch1_median_ms": first["median_ms"],
                "batch1_p99_ms": first["p99_ms"],
                "best_batch": int(best["batch_size"]),
                "best_median_ms": best["median_ms"],
                "best_p99_ms": best["p99_ms"],
                "best_throughput_per_s": best["throughput_per_s"],
            }
        )
    return pd.DataFrame(rows)


def _cell(value: object, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def markdown_table(bundle: ProfileBundle, stage: str = "end_to_end", threads: int | None = None) -> str:
    """The summary as a Markdown table, headed by what it was measured on."""
    threads = threads or default_table_threads(bundle)
    summary = latency_summary(bundle, stage, threads)
    hardware = bundle.metadata["hardware"]
    load = bundle.metadata.get("machine_load", {})
    header = (
        f"Measured on `{bundle.hardware_id}` ({hardware['cpu_model']}, {hardware['cpu_cores']} cores"
        f"{', GPU ' + hardware['gpu']['name'] if hardware.get('gpu') else ''}), torch {hardware['torch']}, "
        f"{bundle.metadata['created_utc']}; {stage} latency in ms of back-to-back calls with {threads} intra-op "
        f"thread(s); load average before/after {load.get('load_average_before')} / {load.get('load_average_after')}, "
        f"other processes kept {load.get('other_processes_busy_cores')} cores busy on average."
    )
    columns = [
        "family",
        "variant",
        "params",
        "MFLOP/sample",
        "accuracy",
        "agreement with fp32",
        "b=1 p50",
        "b=1 p99",
        "best batch",
        "p50",
        "p99",
        "samples/s",
    ]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in summary.itertuples(index=False):
        values = [
            row.family,
            row.variant,
            _cell(row.params),
            _cell(row.mflops_per_sample, 1),
            _cell(row.accuracy, 3),
            _cell(row.agreement_with_fp32, 3),
            _cell(row.batch1_median_ms, 3),
            _cell(row.batch1_p99_ms, 3),
            _cell(row.best_batch),
            _cell(row.best_median_ms, 3),
            _cell(row.best_p99_ms, 3),
            _cell(row.best_throughput_per_s, 0),
        ]
        lines.append("| " + " | ".join(values) + " |")
    skipped = bundle.metadata.get("skipped", [])
    notes = [f"- not measured: {s['family']}/{s['variant']} on {s['device']}: {s['reason']}" for s in skipped]
    return "\n".join([header, "", *lines, *([""] + notes if notes else [])]) + "\n"
