"""How accurate latsim is against a real server: the full testbed validation of README's "How accurate
is latsim" (tens of minutes; run it on a quiet machine — it measures real time).

For each configuration (the CNN of the CPU bundle; FIFO and a 2-class priority queue; 1 and 2
workers; FIFO with dynamic batching) two campaigns are measured: A, whose calibration is used to
predict B, and B, a fresh one (another seed, measured after A). A is compared without calibration
(predictions (a) and (b)), B with A's calibration — each configuration's own A, or with
``--calibrate-on NAME`` one configuration's A for every B (the machine kept apart from the
configuration: held out by configuration). Printed per configuration: the median |relative error| of p50 and p99 for
each prediction over the levels, and at how many levels ≤ 0.7 the calibrated prediction's band
overlaps the measured run-to-run band, and how wide that band is (median over those levels, relative to
the prediction: a band can always be made to overlap by being wide); and for the held-out
campaign B: the median |error| of the calibrated p50 and p99 at levels ≤ 0.7 and above, the levels
the calibrated prediction called unstable, and how often its band contains the measured p99.
Campaigns already in ``--out`` are reused (measure once, compare again after a change to the predictions).

    python benchmarks/bench_testbed.py --out out/testbed --json benchmarks/results/DATE-testbed.json
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from common import ROOT, report_header, write_report  # this folder is on sys.path when run as a script

sys.path.insert(0, str(ROOT))

from simulator.report.testbed import write_testbed_report  # noqa: E402
from simulator.testbed.report_data import report_data  # noqa: E402
from simulator.scenario.calibration import read_calibration  # noqa: E402
from simulator.testbed.calibrate import write_calibration  # noqa: E402
from simulator.testbed.compare import CALIBRATED, MEASURED, PROFILE, compare_campaign, error_summary  # noqa: E402

CONFIGURATIONS = {  # name → (scenario, workers)
    "fifo-1": ("testbed-cnn-fifo.yaml", 1),
    "fifo-2": ("testbed-cnn-fifo.yaml", 2),
    "priority-1": ("testbed-cnn-priority.yaml", 1),
    "priority-2": ("testbed-cnn-priority.yaml", 2),
    "batching-1": ("testbed-cnn-batching.yaml", 1),
}
SEEDS = {"A": 0, "B": 100}
BAND_LEVEL = 0.7


def measure(out: Path, scenario: str, workers: int, seed: int, options: argparse.Namespace) -> None:
    """One campaign with ``latsim testbed run`` (skipped when ``out`` holds a finished one)."""
    if (out / "done").is_file():
        return
    command = [
        sys.executable, "-m", "simulator", "testbed", "run", str(ROOT / "scenarios" / scenario), "--out", str(out),
        "--workers", str(workers), "--levels", options.levels, "--repeats", str(options.repeats),
        "--duration-s", str(options.duration_s), "--seed", str(seed),
        "--max-p99-lateness-ms", str(options.max_p99_lateness_ms), "--max-lateness-ms", str(options.max_lateness_ms),
    ]
    print(" ".join(command[1:]), flush=True)
    subprocess.run(command, cwd=ROOT, check=True)
    (out / "done").touch()


def all_classes(table: pd.DataFrame, max_level: float = 1.0) -> dict[tuple[str, str], Any]:
    """``compare.error_summary``'s rows for all classes together, by (prediction, statistic)."""
    summary = error_summary(table, max_level)
    return {(row.prediction, row.statistic): row for row in summary[summary["class"] == "all"].itertuples()}


def band_width(table: pd.DataFrame, statistic: str) -> float:
    """The calibrated band's median width over the levels ≤ ``BAND_LEVEL`` (all classes), relative to its prediction."""
    rows = table[(table["prediction"] == CALIBRATED) & (table["class"] == "all") & (table["statistic"] == statistic)
                 & (table["level"] <= BAND_LEVEL + 1e-9)].drop_duplicates("level")
    return float(((rows["band_high"] - rows["band_low"]) / rows["predicted"]).median())


def held_out(fresh: pd.DataFrame) -> dict[str, Any]:
    """The calibrated prediction of a held-out campaign (all classes): median |error| by level range, the levels it
    called unstable, and how often (and how widely) its band holds the measured p99, run by run."""
    calibrated = fresh[(fresh["prediction"] == CALIBRATED) & (fresh["class"] == "all")]
    low, high = calibrated[calibrated["level"] <= BAND_LEVEL + 1e-9], calibrated[calibrated["level"] > BAND_LEVEL + 1e-9]

    def median_error(rows: pd.DataFrame, statistic: str) -> float:
        errors = rows.loc[rows["statistic"] == statistic, "error"].abs()
        return float(errors.median()) if errors.notna().any() else float("nan")

    p99 = calibrated[calibrated["statistic"] == "p99"]
    holds = (p99["band_low"] <= p99["measured"]) & (p99["measured"] <= p99["band_high"])
    return {
        "p50_le_0.7": median_error(low, "p50"), "p99_le_0.7": median_error(low, "p99"), "p99_above_0.7": median_error(high, "p99"),
        "unstable_levels": sorted({float(level) for level in calibrated.loc[calibrated["predicted"].isna(), "level"]}),
        "band_holds_p99": (int(holds.sum()), int(len(p99))),
        "band_half_width_p99": float(((p99["band_high"] - p99["band_low"]) / 2 / p99["predicted"]).median()),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="campaigns folder (reused when it holds finished ones)")
    parser.add_argument("--configurations", default=",".join(CONFIGURATIONS))
    parser.add_argument("--levels", default="0.3,0.5,0.7,0.8")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--duration-s", type=float, default=15.0)
    parser.add_argument("--max-p99-lateness-ms", type=float, default=2.0, help="sender limit of a valid run (2: this 2-core VM)")
    parser.add_argument("--max-lateness-ms", type=float, default=20.0)
    parser.add_argument("--calibrate-on", help="one configuration whose campaign A calibrates every configuration's B")
    parser.add_argument("--json", type=Path)
    options = parser.parse_args()
    load_before = os.getloadavg()
    results = {}
    for name in options.configurations.split(","):
        scenario, workers = CONFIGURATIONS[name]
        folders = {campaign: options.out / f"{name}-{campaign}" for campaign in SEEDS}
        for campaign, seed in SEEDS.items():
            measure(folders[campaign], scenario, workers, seed, options)
        source = options.calibrate_on or name
        if source != name:
            measure(options.out / f"{source}-A", *CONFIGURATIONS[source], SEEDS["A"], options)
        calibration_file = options.out / f"{source}-A-calibration.yaml"
        if not calibration_file.is_file():
            write_calibration(options.out / f"{source}-A", calibration_file)
        first = compare_campaign(folders["A"])
        write_testbed_report(report_data(folders["A"], first), folders["A"] / "report")
        fresh = compare_campaign(folders["B"], read_calibration(calibration_file))
        write_testbed_report(report_data(folders["B"], fresh, calibration_file), folders["B"] / "report")
        over_both = all_classes(pd.concat([first, fresh], ignore_index=True))
        rows = {MEASURED: over_both, PROFILE: over_both, CALIBRATED: all_classes(fresh)}  # (a), (b): both campaigns; calibrated: B
        up_to_band = all_classes(fresh, BAND_LEVEL)
        banded = {statistic: up_to_band[CALIBRATED, statistic] for statistic in ("p50", "p95", "p99", "mean")}
        results[name] = {
            "median_abs_error": {
                f"{prediction}/{statistic}": float(entry.median_abs_error) if (entry := by_key.get((prediction, statistic))) else None
                for prediction, by_key in rows.items() for statistic in ("p50", "p99", "mean")
            },
            "calibrated_band_overlaps_levels_le_0.7": {
                statistic: (round(entry.levels_overlapping * entry.levels), int(entry.levels)) for statistic, entry in banded.items()
            },
            "calibrated_band_width_levels_le_0.7": {statistic: band_width(fresh, statistic) for statistic in ("p50", "p99")},
            "runs": {campaign: int(table.drop_duplicates(["level", "repeat"]).shape[0]) for campaign, table in zip(SEEDS, (first, fresh))},
            "calibrated_on": source,
            "held_out": held_out(fresh),
        }
        row = results[name]
        errors = row["median_abs_error"]
        print(
            f"{name}: (b) p50 {errors['measured/p50']:.1%} p99 {errors['measured/p99']:.1%} | (a) p50 {errors['profile/p50']:.1%} "
            f"p99 {errors['profile/p99']:.1%} | (a) calibrated p50 {errors['calibrated/p50']:.1%} p99 {errors['calibrated/p99']:.1%} | "
            f"band overlaps (≤ {BAND_LEVEL}): " + ", ".join(
                f"{statistic} {hit}/{of}" for statistic, (hit, of) in row["calibrated_band_overlaps_levels_le_0.7"].items()
            ) + " | band width " + ", ".join(
                f"{statistic} {width:.0%}" for statistic, width in row["calibrated_band_width_levels_le_0.7"].items()
            ) + f" | valid runs A {row['runs']['A']}, B {row['runs']['B']}",
            flush=True,
        )
        held = row["held_out"]
        print(f"  held out (B calibrated on {source} A): p50 {held['p50_le_0.7']:.1%} p99 {held['p99_le_0.7']:.1%} at ≤ 0.7, "
              f"p99 {held['p99_above_0.7']:.1%} above; unstable levels {held['unstable_levels']}; band holds the measured p99 in "
              f"{held['band_holds_p99'][0]}/{held['band_holds_p99'][1]} cells, median width ±{held['band_half_width_p99']:.0%}", flush=True)
    write_report(options.json, report_header("bench_testbed", load_before, os.getloadavg()) | {
        "levels": options.levels, "repeats": options.repeats, "duration_s": options.duration_s,
        "max_p99_lateness_ms": options.max_p99_lateness_ms, "max_lateness_ms": options.max_lateness_ms, "results": results,
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
