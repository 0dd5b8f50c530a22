"""Peak memory of a long latsim run: does a 10-million-request replication stay under 2 GB?

Each run happens in a fresh child process (so nothing from the parent or an earlier run is
counted): the child builds an M/M/4 non-preemptive priority scenario (λ = 320/s, exponential
service with mean 10 ms, ρ = 0.8, classes high/low with shares 0.3/0.7), calls
``run`` with one replication and exits. The parent reaps it with ``os.wait4`` and
reports that child's own peak resident set size (``ru_maxrss``), its wall time and simulated
requests per second. It also samples the child's current RSS (``/proc/PID/status``) while it
runs, to show how memory evolves over the run.

Three children run, in this order:

* ``import-only``: imports latsim and exits (the fixed cost: Python, numpy, scipy, pandas…);
* ``small``: ``--small-requests`` measured requests (default 100 000), for reference;
* ``large``: ``--requests`` measured requests (default 10 000 000; a few minutes).

Each run also simulates a warm-up of requests/10 (latsim's default). If peak RSS of the large
run is close to that of the small one, memory does not grow with the number of requests.
Nothing here asserts; the goal (peak RSS ≤ 2 GB) is stated in the output.

    python benchmarks/bench_memory.py [--requests 10000000] [--small-requests 100000] [--json out.json]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path

from common import (  # this folder is on sys.path when run as a script
    ROOT,
    git_revision,
    report_header,
    write_report,
)

GOAL_BYTES = 2 * 10**9  # 2 GB (decimal); = 1907 MiB
MIB = 1024 * 1024


def scenario(requests: int, warmup: int, seed: int) -> dict:
    return {
        "name": "mm4-priority-memory",
        "run": {"requests": requests, "warmup_requests": warmup, "replications": 1, "seed": seed},
        "workload": {
            "arrival": {"process": "poisson", "rate_per_s": 320},
            "classes": [
                {"name": "high", "share": 0.3, "priority": 0, "deadline_ms": 50, "kind": "firm"},
                {"name": "low", "share": 0.7, "priority": 1, "deadline_ms": 200, "kind": "soft", "target": 0.95},
            ],
        },
        "nodes": [
            {
                "name": "node",
                "workers": 4,
                "discipline": {"policy": "priority"},
                "service": {"distribution": "scipy", "name": "expon", "params": {"scale": 10.0}},
            }
        ],
    }


# --------------------------------------------------------------------------- child


def child(requests: int, warmup: int, seed: int) -> None:
    """Runs in the child process: one replication, then a JSON line on stdout."""
    import resource

    sys.path.insert(0, str(ROOT))
    started = time.perf_counter()
    from simulator import run, scenario_from_dict

    imported = time.perf_counter()
    out: dict = {"import_s": imported - started}
    if requests > 0:
        result = run(scenario_from_dict(scenario(requests, warmup, seed)))
        finished = time.perf_counter()
        summary = result.summary
        out.update(
            run_s=finished - imported,
            simulated_requests=requests + warmup,
            measured_requests=summary["classes"]["all"]["finished"],
            quantiles_exact=summary["quantiles_exact"],
            wait_mean_ms={name: result.estimate("wait_ms.mean", name).estimate for name in ("high", "low")},
            latency_p99_ms={name: result.estimate("latency_ms.p99", name).estimate for name in ("high", "low")},
        )
    out["self_maxrss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps(out), flush=True)


# --------------------------------------------------------------------------- parent


def current_rss_bytes(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def measure(label: str, requests: int, warmup: int, seed: int, sample_every_s: float) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--child",
               "--requests", str(requests), "--warmup", str(warmup), "--seed", str(seed)]
    print(f"  {label:<11} {requests:>11,} measured + {warmup:,} warm-up requests …", end="", flush=True)
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    samples: list[tuple[float, int]] = []
    done = threading.Event()

    def sampler() -> None:
        while not done.wait(sample_every_s):
            rss = current_rss_bytes(process.pid)
            if rss is not None:
                samples.append((time.perf_counter() - started, rss))

    thread = threading.Thread(target=sampler, daemon=True)
    thread.start()
    stdout = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    wall_s = time.perf_counter() - started
    done.set()
    thread.join()
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"\n{label}: child exited with status {process.returncode}")
    report = json.loads(stdout.strip().splitlines()[-1])
    report.update(
        label=label,
        requests=requests,
        warmup_requests=warmup,
        wall_s=wall_s,
        peak_rss_bytes=usage.ru_maxrss * 1024,  # Linux reports KiB
        rss_samples=[{"t_s": round(t, 2), "rss_bytes": rss} for t, rss in samples],
    )
    if requests > 0:
        report["requests_per_s"] = report["simulated_requests"] / report["run_s"]
    print(f" {wall_s:7.1f} s, peak RSS {report['peak_rss_bytes'] / MIB:7.1f} MiB", flush=True)
    return report


def rss_trace(samples: list[dict], points: int = 8) -> str:
    if not samples:
        return "(run too short to sample)"
    step = max(1, len(samples) // points)
    picked = samples[step - 1 :: step][:points]
    if picked[-1] is not samples[-1]:
        picked.append(samples[-1])
    return "  ".join(f"{s['t_s']:.0f}s:{s['rss_bytes'] / MIB:.0f}" for s in picked)


def main(argv: list[str] | None = None) -> dict | None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=10_000_000, help="measured requests of the large run")
    parser.add_argument("--small-requests", type=int, default=100_000, help="measured requests of the reference run")
    parser.add_argument("--warmup", type=int, default=None, help=argparse.SUPPRESS)  # child only
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sample-every", type=float, default=1.0, help="seconds between RSS samples (default 1)")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="write the numbers as JSON")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.requests, args.warmup if args.warmup is not None else args.requests // 10, args.seed)
        return None

    load_before = os.getloadavg()
    print(f"latsim memory benchmark  {datetime.datetime.now().isoformat(timespec='seconds')}")
    print("scenario: M/M/4 non-preemptive priority, λ=320/s, exponential service mean 10 ms, ρ=0.80, "
          "classes high/low shares 0.3/0.7, replications=1, warm-up = requests/10")
    print(f"host: {platform.node()} {os.cpu_count()} CPUs, Python {platform.python_version()}, latsim at {git_revision()}")
    print(f"load average before (1/5/15 min): {' / '.join(f'{x:.2f}' for x in load_before)}")
    runs = [
        measure("import-only", 0, 0, args.seed, args.sample_every),
        measure("small", args.small_requests, args.small_requests // 10, args.seed, args.sample_every),
        measure("large", args.requests, args.requests // 10, args.seed, args.sample_every),
    ]
    load_after = os.getloadavg()

    print()
    print(f"{'run':<12} {'measured req':>13} {'peak RSS MiB':>13} {'vs 2 GB':>8} {'run s':>8} {'req/s':>9}  exact quantiles")
    print("─" * 86)
    for run in runs:
        share = run["peak_rss_bytes"] / GOAL_BYTES
        if run["requests"]:
            tail = f"{run['run_s']:8.1f} {run['requests_per_s']:9,.0f}  {run['quantiles_exact']}"
        else:
            tail = f"{'—':>8} {'—':>9}  —"
        print(f"{run['label']:<12} {run['requests']:>13,} {run['peak_rss_bytes'] / MIB:13.1f} {share:8.1%} {tail}")
    large, small, base = runs[2], runs[1], runs[0]
    print()
    print(f"RSS over the large run (elapsed:MiB): {rss_trace(large['rss_samples'])}")
    growth = large["peak_rss_bytes"] - small["peak_rss_bytes"]
    print(f"large − small peak RSS: {growth / MIB:+.1f} MiB for {large['requests'] / max(small['requests'], 1):.0f}× "
          f"the requests; small − import-only: {(small['peak_rss_bytes'] - base['peak_rss_bytes']) / MIB:+.1f} MiB")
    verdict = "meets" if large["peak_rss_bytes"] <= GOAL_BYTES else "MISSES"
    print(f"goal: peak RSS ≤ 2 GB (1907 MiB) for {large['requests']:,} requests → {verdict} the goal "
          f"({large['peak_rss_bytes'] / MIB:.0f} MiB)")
    sys.path.insert(0, str(ROOT))
    from simulator.analytic import mmc_priority_mean_waits_ms

    high, low = mmc_priority_mean_waits_ms(4, [0.3 * 0.32, 0.7 * 0.32], 1 / 10.0)  # the scenario above, per ms
    print(f"mean wait (large run): high {large['wait_mean_ms']['high']:.3f} ms, low {large['wait_mean_ms']['low']:.3f} ms "
          f"(M/M/4 priority theory: high {high:.3f} ms, low {low:.3f} ms)")
    print(f"load average after (1/5/15 min): {' / '.join(f'{x:.2f}' for x in load_after)}")

    report = {
        **report_header("bench_memory", load_before, load_after),
        "goal_peak_rss_bytes": GOAL_BYTES,
        "runs": runs,
    }
    write_report(args.json, report)
    return report


if __name__ == "__main__":
    main()
