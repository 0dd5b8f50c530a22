"""Coverage of latsim's 95 % intervals and error rates of its verdicts, against exact M/M/1 and M/M/4 values.

Each cell runs ``--seeds`` seeds (default 200) of an exact FIFO queue (``tests/queue_harness.py``: Lindley's
or Kiefer–Wolfowitz's recursion) through latsim's own statistics path, and prints

- per interval cell (M/M/1 and M/M/4, ρ 0.5 and 0.9, R = 1 and R = 10): the share of intervals that contain
  the exact mean wait, p99 latency and deadline-met ratio (deadline at the exact p90), the binomial range a
  95 % rate would give at 99 %, and how many runs noted that their batch means were still correlated;
- per verdict cell (a hard class whose true miss probability is 2, 1 or ½ × its ``miss_tolerance``): how many
  seeds say met / inconclusive / violated. "met" must stay within 5 % where the truth is at or above the
  tolerance, and come in with enough data where it is half of it.

About 5 to 10 minutes of CPU at 200 seeds. ``tests/test_coverage.py`` runs a smaller fixed-seed version.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from common import ROOT, report_header, write_report  # this folder is on sys.path when run as a script

sys.path.insert(0, str(ROOT))

from scipy.stats import binom  # noqa: E402

from tests.queue_harness import METRICS, coverage, hard_verdicts  # noqa: E402

INTERVAL_CELLS = [  # servers, ρ, replications, requests per replication
    (servers, rho, replications, requests)
    for servers in (1, 4)
    for rho, replications, requests in ((0.5, 10, 4_000), (0.9, 10, 60_000), (0.5, 1, 40_000), (0.9, 1, 600_000))
]
SHORT_CELLS = [(1, 0.9, 1, 20_000)]  # too short for batch means: the note should say so
VERDICT_CELLS = [  # servers, ρ, replications, requests, truth / tolerance, tolerance
    (1, 0.9, 2, 20_000, 2.0, 1e-4),
    (1, 0.9, 10, 20_000, 2.0, 1e-4),
    (1, 0.5, 2, 20_000, 2.0, 1e-4),
    (1, 0.5, 10, 100_000, 1.0, 1e-3),
    (1, 0.5, 10, 40_000, 0.5, 1e-3),
    (4, 0.9, 10, 100_000, 0.5, 1e-2),
]
NOMINAL = 0.95


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=200, help="seeds per cell (default 200)")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="write the numbers as JSON")
    args = parser.parse_args(argv)
    seeds = range(args.seeds)
    low, high = (binom.ppf(q, args.seeds, NOMINAL) / args.seeds for q in (0.005, 0.995))
    load_before = os.getloadavg()
    started = time.process_time()
    print(f"interval coverage over {args.seeds} seeds (a 95 % rate gives {low:.3f}–{high:.3f} at 99 %)")
    print(f"{'queue':<6} {'ρ':>4} {'R × requests':>14} " + " ".join(f"{m:>18}" for m in METRICS) + "  still correlated")
    intervals = []
    for servers, rho, replications, requests in INTERVAL_CELLS + SHORT_CELLS:
        counts = coverage(servers, rho, replications, requests, seeds)
        rates = {metric: counts[metric] / args.seeds for metric in METRICS}
        flags = ["" if low <= rates[m] <= high else " *" for m in METRICS]
        print(f"M/M/{servers:<2} {rho:>4} {f'{replications} × {requests:,}':>14} "
              + " ".join(f"{rates[m]:>16.3f}{flag:2}" for m, flag in zip(METRICS, flags)) + f"  {counts['correlated']:>4}")
        intervals.append({"servers": servers, "rho": rho, "replications": replications, "requests": requests,
                          "coverage": rates, "still_correlated": counts["correlated"]})
    print("\nhard-class verdicts (met must be ≤ 5 % where truth ≥ tolerance)")
    verdicts = []
    for servers, rho, replications, requests, ratio, tolerance in VERDICT_CELLS:
        counts = hard_verdicts(servers, rho, replications, requests, ratio, tolerance, seeds)
        print(f"M/M/{servers:<2} ρ {rho} {replications} × {requests:,}, truth {ratio:g} × tolerance {tolerance:g}: "
              + ", ".join(f"{verdict} {count / args.seeds:.3f}" for verdict, count in counts.items()))
        verdicts.append({"servers": servers, "rho": rho, "replications": replications, "requests": requests,
                         "truth_over_tolerance": ratio, "tolerance": tolerance, "verdicts": counts})
    print(f"\nCPU {time.process_time() - started:.0f} s; load average {load_before[0]:.1f} → {os.getloadavg()[0]:.1f}")
    report = {**report_header("coverage", load_before, os.getloadavg()), "seeds": args.seeds, "intervals": intervals, "verdicts": verdicts}
    write_report(args.json, report)
    return report


if __name__ == "__main__":
    main()
