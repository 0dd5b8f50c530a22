"""Wall time of the shipped capacity plans, from an empty results folder (nothing reused).

Goal: ``scenarios/plan-cpu.yaml`` in under 10 minutes on a 2-core machine (the local process pool,
one worker per core). Prints, per plan, the wall time, the points simulated, how the search
pruned, the answer and whether it is VALID; writes JSON on request. No assertion on timings.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, git_revision, write_report  # this folder is on sys.path when run as a script

sys.path.insert(0, str(ROOT))

from simulator.planning.api import plan  # noqa: E402
from simulator.runner.executors import available_cpus, make_executor  # noqa: E402
from simulator.scenario.loader import load_scenario  # noqa: E402

PLANS = {"cpu": ROOT / "scenarios" / "plan-cpu.yaml", "gpu": ROOT / "scenarios" / "plan-gpu.yaml"}
GOALS_S = {"cpu": 600.0}


def timed_plan(path: Path, workers: int, keep: Path | None) -> dict:
    """Plan one scenario into an empty folder (``keep``, or a temporary one); its wall time, search counts and answer."""
    if keep is not None and keep.exists() and any(keep.iterdir()):
        raise SystemExit(f"{keep} is not empty: the benchmark times a plan from nothing")
    with tempfile.TemporaryDirectory(prefix="bench-plan-") as scratch, make_executor("processes", workers) as executor:
        started = time.perf_counter()
        document = plan(load_scenario(path), keep or Path(scratch), executor, command=f"latsim plan {path.relative_to(ROOT)} --out RESULTS")
        seconds = time.perf_counter() - started
    labels = {c["id"]: c["label"] for c in document["configurations"]}
    return {
        "scenario": str(path.relative_to(ROOT)), "seconds": round(seconds, 1), "executor": document["inputs"]["executor"],
        "configurations": document["inputs"]["space_size"], "points_simulated": document["search"]["points_simulated"],
        "screened_at_target": document["search"]["screened_at_target"], "confirmed_at_target": document["search"]["confirmed_at_target"],
        "not_confirmed": document["search"]["not_confirmed"], "answer": [labels[i] for i in document["finalists"]],
        "valid": document["valid"], "invalid_reasons": document["invalid_reasons"],
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--plan", action="append", choices=list(PLANS), help="a plan to time (repeatable; default: all)")
    parser.add_argument("--workers", type=int, default=available_cpus(), help="local worker processes (default: every CPU)")
    parser.add_argument("--keep", type=Path, default=None, metavar="DIR", help="keep each plan's results in DIR/<plan> (for latsim report)")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="write the numbers as JSON")
    args = parser.parse_args(argv)
    load_before = os.getloadavg()
    results = {}
    for name in args.plan or list(PLANS):
        results[name] = timed_plan(PLANS[name], args.workers, args.keep / name if args.keep else None)
        found = results[name]
        goal = f" (goal < {GOALS_S[name]:.0f} s)" if name in GOALS_S else ""
        print(f"{name}: {found['seconds']:.1f} s{goal}, {found['points_simulated']} points on {found['executor']}; "
              f"{found['configurations']} configurations, {found['screened_at_target']} screened and {found['confirmed_at_target']} "
              f"confirmed at the target, never confirmed: {found['not_confirmed']}")
        print(f"   answer: {found['answer']} ({'VALID' if found['valid'] else 'INVALID: ' + '; '.join(found['invalid_reasons'])})")
    report = {
        "benchmark": "bench_plan", "revision": git_revision(), "cpus": available_cpus(), "workers": args.workers,
        "load_average_before": load_before, "load_average_after": os.getloadavg(), "plans": results,
    }
    print(f"load average before {load_before}, after {report['load_average_after']}")
    write_report(args.json, report)
    return report


if __name__ == "__main__":
    main()
