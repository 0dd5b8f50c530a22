"""Speed of latsim's compiled fast engine against a plain numba recursion and against latsim's SimPy path.

Two systems, each simulated by three tools in one process, interleaved round by round:

* ``mm1``: M/M/1, Poisson arrivals at ``--rate-mm1`` per second, exponential service of mean
  ``--service-ms`` (ρ = 0.8 by default), one class.
* ``mm4``: M/M/4 with two non-preemptive priority classes (``bench_speed.py``'s system: shares
  0.3 / 0.7, λ = 320/s, ρ = 0.8).

The tools:

* ``recursion``: the plain numba recursion — numpy draws the inputs, a numba function computes
  every request's start (Lindley's recursion for M/M/1; for M/M/4, the c-server recursion over
  the servers' free times with one FIFO line per priority), numpy gives the per-class mean and
  p99 of wait and latency after the warm-up. The floor of what any simulator in Python pays.
* ``fast``: ``scenario_from_dict`` + ``run(engine="fast")`` with one replication — validation,
  the compiled engine, and latsim's whole statistics path (fine batches, MSER warm-up, exact
  quantiles, batch-means intervals, verdicts, utilization).
* ``simpy``: the same with ``engine="simpy"``, latsim's SimPy model (slow: ``--simpy-requests``,
  default a tenth of ``--requests``, timed and scaled per request).

Requests per second = (warm-up + measured) / wall seconds. Ratios are medians over rounds of the
same round's rates. Goals: the fast engine reaches ≥ 30 % of the recursion's rate on both
systems, and ≥ 50× the SimPy path's. Numba compiles (or loads from its cache) before the first
round, outside the timings. Nothing here asserts on timings.

    python benchmarks/bench_fastpath.py [--requests 1000000] [--repeats 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import datetime
import gc
import os
import platform
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np
from common import (  # this folder is on sys.path when run as a script
    ROOT,
    class_stats,
    git_revision,
    report_header,
    write_report,
)
from numba import njit

sys.path.insert(0, str(ROOT))

import simulator
from simulator import run, scenario_from_dict

CLASSES = (("high", 0.3, 0), ("low", 0.7, 1))  # mm4: name, share, priority (smaller is served first)
GOALS = {"fast/recursion": 0.30, "fast/simpy": 50.0}


@njit(cache=True)
def lindley_starts(arrival_ms: np.ndarray, service_ms: np.ndarray) -> np.ndarray:
    """FIFO single server: each request starts when it arrives or when the one before it ends."""
    start_ms = np.empty_like(arrival_ms)
    free_ms = 0.0
    for i in range(len(arrival_ms)):
        start_ms[i] = max(arrival_ms[i], free_ms)
        free_ms = start_ms[i] + service_ms[i]
    return start_ms


@njit(cache=True)
def priority_starts(arrival_ms: np.ndarray, service_ms: np.ndarray, level: np.ndarray, servers: int, levels: int) -> np.ndarray:
    """Non-preemptive priority with ``servers`` servers: a freed server takes the head of the most urgent
    non-empty line (a request waits only when every server is busy, so each waiting request arrived
    before any server frees)."""
    n = len(arrival_ms)
    start_ms = np.empty(n)
    free_ms = np.zeros(servers)  # a binary min-heap of the servers' free times
    lines = np.empty((levels, n), np.int64)
    heads = np.zeros(levels, np.int64)
    tails = np.zeros(levels, np.int64)
    waiting = 0
    for i in range(n + 1):
        now = arrival_ms[i] if i < n else np.inf
        while waiting > 0 and free_ms[0] <= now:
            line = 0
            while heads[line] == tails[line]:
                line += 1
            j = lines[line, heads[line]]
            heads[line] += 1
            waiting -= 1
            start_ms[j] = free_ms[0]
            _replace_root(free_ms, free_ms[0] + service_ms[j])
        if i == n:
            break
        if free_ms[0] <= now:
            start_ms[i] = now
            _replace_root(free_ms, now + service_ms[i])
        else:
            lines[level[i], tails[level[i]]] = i
            tails[level[i]] += 1
            waiting += 1
    return start_ms


@njit(cache=True)
def _replace_root(heap: np.ndarray, value: float) -> None:
    """Replace a min-heap's smallest value and restore the heap."""
    i = 0
    size = len(heap)
    while True:
        child = 2 * i + 1
        if child >= size:
            break
        if child + 1 < size and heap[child + 1] < heap[child]:
            child += 1
        if value <= heap[child]:
            break
        heap[i] = heap[child]
        i = child
    heap[i] = value


def run_recursion(system: str, args: argparse.Namespace, total: int, warmup: int) -> dict:
    rng = np.random.default_rng(args.seed)
    rate_per_s = args.rate_mm1 if system == "mm1" else args.rate_mm4
    arrival_ms = np.cumsum(rng.exponential(1000.0 / rate_per_s, total))
    service_ms = rng.exponential(args.service_ms, total)
    if system == "mm1":
        classes, names = np.zeros(total, np.int64), ["a"]
        start_ms = lindley_starts(arrival_ms, service_ms)
    else:
        classes = (rng.random(total) >= CLASSES[0][1]).astype(np.int64)
        names = [name for name, _, _ in CLASSES]
        start_ms = priority_starts(arrival_ms, service_ms, classes, 4, len(CLASSES))
    measured = slice(warmup, None)
    wait_ms = (start_ms - arrival_ms)[measured]
    return class_stats(classes[measured], wait_ms, wait_ms + service_ms[measured], names)


def scenario(system: str, args: argparse.Namespace, requests: int, warmup: int) -> dict:
    if system == "mm1":
        classes = [{"name": "a", "deadline_ms": 100, "kind": "soft", "target": 0.9}]
        arrival, workers, discipline = {"process": "poisson", "rate_per_s": args.rate_mm1}, 1, "fifo"
    else:
        classes = [
            {"name": "high", "share": 0.3, "priority": 0, "deadline_ms": 50, "kind": "firm"},
            {"name": "low", "share": 0.7, "priority": 1, "deadline_ms": 200, "kind": "soft", "target": 0.95},
        ]
        arrival, workers, discipline = {"process": "poisson", "rate_per_s": args.rate_mm4}, 4, "priority"
    return {
        "name": f"{system}-fastpath-bench",
        "run": {"requests": requests, "warmup_requests": warmup, "replications": 1, "seed": args.seed},
        "workload": {"arrival": arrival, "classes": classes},
        "nodes": [{"name": "node", "workers": workers, "discipline": {"policy": discipline},
                   "service": {"distribution": "scipy", "name": "expon", "params": {"scale": args.service_ms}}}],
    }


def run_latsim(system: str, args: argparse.Namespace, requests: int, warmup: int, engine: str) -> dict:
    result = run(scenario_from_dict(scenario(system, args, requests, warmup)), engine=engine)
    assert result.summary["engine"] == engine
    names = ["a"] if system == "mm1" else [name for name, _, _ in CLASSES]
    return {
        name: {
            "wait_mean_ms": result.estimate("wait_ms.mean", name).estimate, "wait_p99_ms": result.estimate("wait_ms.p99", name).estimate,
            "latency_mean_ms": result.estimate("latency_ms.mean", name).estimate,
            "latency_p99_ms": result.estimate("latency_ms.p99", name).estimate,
        }
        for name in names
    }


def timed(call) -> tuple[float, dict]:
    gc.collect()
    started = time.perf_counter()
    result = call()
    return time.perf_counter() - started, result


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1_000_000, help="measured requests (default 1000000)")
    parser.add_argument("--simpy-requests", type=int, default=None, help="measured requests of the SimPy path (default requests/10)")
    parser.add_argument("--repeats", type=int, default=5, help="rounds (default 5)")
    parser.add_argument("--rate-mm1", type=float, default=80.0, help="M/M/1 arrival rate per second (default 80: ρ = 0.8)")
    parser.add_argument("--rate-mm4", type=float, default=320.0, help="M/M/4 arrival rate per second (default 320: ρ = 0.8)")
    parser.add_argument("--service-ms", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--systems", default="mm1,mm4")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="write the numbers as JSON")
    args = parser.parse_args(argv)
    systems = [s for s in args.systems.split(",") if s]
    warmup = args.requests // 10
    simpy_requests = args.simpy_requests or args.requests // 10
    sizes = {"recursion": args.requests + warmup, "fast": args.requests + warmup, "simpy": simpy_requests + simpy_requests // 10}
    load_before = os.getloadavg()
    print(f"latsim fast-path benchmark  {datetime.datetime.now().isoformat(timespec='seconds')}")
    print(f"host: {platform.node()} {os.cpu_count()} CPUs, Python {platform.python_version()}, latsim at {git_revision()}, "
          f"numpy {np.__version__}; load average before (1/5/15 min): {' / '.join(f'{x:.2f}' for x in load_before)}")
    print(f"requests per run (warm-up included): recursion and fast {sizes['fast']:,}, simpy {sizes['simpy']:,}; {args.repeats} rounds")
    tools = {
        "recursion": lambda system: run_recursion(system, args, sizes["recursion"], warmup),
        "fast": lambda system: run_latsim(system, args, args.requests, warmup, "fast"),
        "simpy": lambda system: run_latsim(system, args, simpy_requests, simpy_requests // 10, "simpy"),
    }
    for system in systems:  # compile (or load from numba's cache) outside the timings
        run_recursion(system, args, 1000, 100)
        run_latsim(system, args, 1000, 100, "fast")
    rates: dict[str, dict[str, list[float]]] = {system: {tool: [] for tool in tools} for system in systems}
    stats: dict[str, dict] = {system: {} for system in systems}
    for round_ in range(args.repeats):
        for system in systems:
            for tool, call in tools.items():
                seconds, stats[system][tool] = timed(partial(call, system))
                rates[system][tool].append(sizes[tool] / seconds)
                print(f"  round {round_ + 1}/{args.repeats} {system} {tool:<9} {seconds:7.2f} s  {sizes[tool] / seconds:12,.0f} req/s", flush=True)
    load_after = os.getloadavg()

    report_systems = {}
    print()
    print(f"{'system':<6} {'tool':<10} {'median req/s':>14} │ per class: wait mean (ms), p99 latency (ms)")
    for system in systems:
        for tool in tools:
            cells = "  ".join(f"{name} {s['wait_mean_ms']:.3f} / {s['latency_p99_ms']:.1f}" for name, s in stats[system][tool].items())
            print(f"{system:<6} {tool:<10} {np.median(rates[system][tool]):14,.0f} │ {cells}")
        ratios = {
            "fast/recursion": float(np.median(np.array(rates[system]["fast"]) / np.array(rates[system]["recursion"]))),
            "fast/simpy": float(np.median(np.array(rates[system]["fast"]) / np.array(rates[system]["simpy"]))),
        }
        for name, goal in GOALS.items():
            verdict = "meets" if ratios[name] >= goal else "MISSES"
            print(f"{system}: {name} = {ratios[name]:.3g} (goal ≥ {goal:g}) → {verdict} the goal")
        report_systems[system] = {"requests_per_s": rates[system], "ratios": ratios, "classes": stats[system]}
    print(f"load average after (1/5/15 min): {' / '.join(f'{x:.2f}' for x in load_after)}")
    report = {
        **report_header("bench_fastpath", load_before, load_after),
        "versions": {"latsim": simulator.__version__, "numpy": np.__version__},
        "requests": sizes,
        "repeats": args.repeats,
        "goals": GOALS,
        "systems": report_systems,
    }
    write_report(args.json, report)
    return report


if __name__ == "__main__":
    main()
