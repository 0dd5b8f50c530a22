"""How far the machine moved between two testbed campaigns: the kernel's speed under load against its
profile, per campaign, and how well B's speed is foretold from A (what calibration carries across).

Not a benchmark but kept with them: it reads campaigns that ``bench_testbed.py`` measured (folders
``<configuration>-A`` and ``-B`` under each FOLDER) and measures nothing itself. Per campaign: the
profile's mean kernel time (and its snapshots' range), the *run speed* — the median over the valid
runs of the mean kernel time of the calls that started alone on the server (so concurrency does not
enter it; first 10 % of a run left out) — and their ratio. Per A/B pair: how much the ratio moved,
and the relative error of two forecasts of B's run speed: A's ratio × B's profile (what calibration
does) and A's run speed alone (ignoring B's profile).

    python benchmarks/testbed_speed_shift.py /work/campaigns2 [MORE_FOLDERS ...]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from simulator.testbed.campaign_file import profile_snapshots, read_campaign  # noqa: E402
from simulator.testbed.scenario import WARMUP_FRACTION  # noqa: E402


def campaign_speed(directory: Path) -> dict[str, float]:
    """The profile's mean kernel time, its snapshots' min and max, and the campaign's run speed (ms)."""
    campaign = read_campaign(directory)
    profile = pd.read_parquet(directory / "profile" / "profile.parquet")
    snapshot_means = profile.groupby(profile_snapshots(profile))["kernel_ms"].mean()
    run_means = []
    for entry in campaign["runs"]:
        if entry["valid"]:
            table = pd.read_parquet(directory / entry["dir"] / "requests.parquet").sort_values("dequeue_ms")
            table = table.iloc[int(len(table) * WARMUP_FRACTION) :]
            alone = table[(table["status"] == 200) & (table["in_system_at_dequeue"] == 1)]
            run_means.append(alone["kernel_ms"].mean())
    profile_ms = float(snapshot_means.mean())
    run_ms = float(np.median(run_means))
    return {"profile_ms": profile_ms, "snapshot_min_ms": float(snapshot_means.min()), "snapshot_max_ms": float(snapshot_means.max()),
            "run_ms": run_ms, "ratio": run_ms / profile_ms, "valid_runs": len(run_means)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", type=Path, nargs="+", help="folders holding <configuration>-A and <configuration>-B campaigns")
    options = parser.parse_args()
    pairs = []
    for folder in options.folders:
        for first in sorted(folder.glob("*-A")):
            second = first.with_name(first.name[:-1] + "B")
            if not (first / "campaign.json").is_file() or not (second / "campaign.json").is_file():
                continue
            a, b = campaign_speed(first), campaign_speed(second)
            calibrated = a["ratio"] * b["profile_ms"] / b["run_ms"] - 1
            carried = a["run_ms"] / b["run_ms"] - 1
            pairs.append({"calibrated": calibrated, "carried": carried})
            for name, speed in (("A", a), ("B", b)):
                print(f"{folder}/{first.name[:-2]} {name}: profile {speed['profile_ms']:.3f} ms (snapshots {speed['snapshot_min_ms']:.3f}–"
                      f"{speed['snapshot_max_ms']:.3f}), run speed {speed['run_ms']:.3f} ms over {speed['valid_runs']} runs, "
                      f"ratio {speed['ratio']:.3f}")
            print(f"  ratio moved {b['ratio'] / a['ratio'] - 1:+.1%}; B's run speed foretold by A's ratio × B's profile "
                  f"{calibrated:+.1%}, by A's run speed {carried:+.1%}")
    if pairs:
        for key, label in (("calibrated", "A's ratio × B's profile"), ("carried", "A's run speed")):
            errors = np.abs([pair[key] for pair in pairs])
            print(f"median |error| of {label} over {len(pairs)} pairs: {np.median(errors):.1%} (max {errors.max():.1%})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
