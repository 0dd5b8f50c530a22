"""Wall time of the full serving scenario (cache, 4 partitions x 2 replicas, batching, priorities,
rolling update) at 1M requests, against a plain M/M/1 run of the same length in the same process.

Goal: the serving scenario's 1M requests in under 30 s on a 2-core machine. The plain run is the
reference, on the same SimPy engine (the scenario's cache, partitions, batching and update rule
the fast engine out): the ratio says what the serving features cost over the bare engine, and is
steadier than the absolute time on a shared machine. No assertion: it prints, and writes JSON on
request.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from common import (  # this folder is on sys.path when run as a script
    ROOT,
    git_revision,
    write_report,
)

sys.path.insert(0, str(ROOT))

from simulator import load_scenario, run, scenario_from_dict  # noqa: E402

SCENARIO = ROOT / "scenarios" / "serving-cluster.yaml"
GOAL_S = 30.0


def plain_scenario(requests: int, warmup: int) -> dict:
    """The reference: one M/M/1-like node at ρ = 0.5, no cache, batching, partitions or events."""
    return {
        "name": "plain-mm1",
        "run": {"requests": requests, "warmup_requests": warmup, "replications": 1, "seed": 7},
        "workload": {
            "arrival": {"process": "poisson", "rate_per_s": 4000},
            "classes": [{"name": "a", "deadline_ms": 60, "kind": "soft", "target": 0.99}],
        },
        "nodes": [{"name": "n", "service": {"distribution": "scipy", "name": "expon", "params": {"scale": 0.125}}}],
    }


def timed(run) -> tuple[float, dict]:
    start = time.perf_counter()
    summary = run().summary
    return time.perf_counter() - start, summary


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1_000_000, help="measured requests (default 1000000)")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs of each; the best counts (default 2)")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="write the numbers as JSON")
    args = parser.parse_args(argv)

    loaded = load_scenario(SCENARIO)
    warmup = loaded.run.warmup
    plain = scenario_from_dict(plain_scenario(args.requests, warmup))
    load_before = os.getloadavg()
    plain_s, serving_s = [], []
    for _ in range(args.repeats):  # interleaved, so that other load on the machine hits both alike
        seconds, _ = timed(lambda: run(plain, engine="simpy"))
        plain_s.append(seconds)
        seconds, summary = timed(lambda: run(loaded, requests=args.requests, replications=1))
        serving_s.append(seconds)
    load_after = os.getloadavg()
    everyone = summary["classes"]["all"]
    total = args.requests + warmup
    numbers = {
        "requests": args.requests,
        "warmup_requests": warmup,
        "plain_best_s": min(plain_s),
        "serving_best_s": min(serving_s),
        "serving_requests_per_s": total / min(serving_s),
        "serving_over_plain": min(serving_s) / min(plain_s),
        "goal_s": GOAL_S,
        "cache_hit_ratio": everyone["cache_hit_ratio"]["estimate"],
        "interactive_met_ratio": summary["classes"]["interactive"]["deadline_met_ratio"]["estimate"],
        "load_average_before_after": [load_before[0], load_after[0]],
        "cpus": os.cpu_count(),
        "latsim_revision": git_revision(),
    }
    print(f"latsim at {numbers['latsim_revision']}; machine: {os.cpu_count()} CPUs, "
          f"1-min load average {load_before[0]:.2f} -> {load_after[0]:.2f}")
    print(f"{'run':<34}{'best (s)':>10}{'req/s':>12}")
    print(f"{'plain M/M/1 (reference)':<34}{min(plain_s):>10.2f}{total / min(plain_s):>12,.0f}")
    print(f"{'serving-cluster.yaml':<34}{min(serving_s):>10.2f}{total / min(serving_s):>12,.0f}")
    verdict = "meets" if min(serving_s) < GOAL_S else "MISSES"
    print(
        f"serving / plain = {numbers['serving_over_plain']:.2f}x; {verdict} the {GOAL_S:.0f} s goal for "
        f"{args.requests:,} requests (cache hit ratio {numbers['cache_hit_ratio']:.3f}, "
        f"interactive deadline met {numbers['interactive_met_ratio']:.4f})"
    )
    write_report(args.json, numbers)
    return numbers


if __name__ == "__main__":
    main()
