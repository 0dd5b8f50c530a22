"""Speed of latsim against an idiomatic SimPy model and Ciw, on the same M/M/c priority queue.

All three tools simulate, in one process on one machine, the same system: Poisson arrivals
at ``--rate`` per second, two classes (shares 0.3 / 0.7, priorities 0 / 1, smaller first,
non-preemptive), exponential service with mean ``--service-ms``, ``--workers`` identical
workers. Each simulates ``--warmup`` + ``--requests`` requests and discards the warm-up ones.

What is timed (wall clock, best of ``--repeats``, tools interleaved round by round so that
load from other work on the machine hits all of them alike) is what a user of each tool pays:

* latsim: ``scenario_from_dict`` + ``run`` (replications=1, ``engine="simpy"``: the SimPy model,
  not the compiled fast engine, which ``bench_fastpath.py`` measures): validation, model
  building, the simulation, and the full summary (per-class mean/p50/p90/p95/p99/p99.9/max of
  latency and wait with batch-means intervals, deadline ratios, utilization, queue length).
* SimPy: the textbook model, one process per request, ``simpy.PriorityResource``,
  ``env.timeout`` for gaps and service, ``random.Random`` draws, waits and latencies kept in
  lists, per-class mean and p99 computed with numpy at the end.
* Ciw: ``ciw.create_network`` with an Exponential arrival stream per class, priority classes
  and c servers, ``simulate_until_max_customers``, ``get_all_records()``, the same statistics.

Requests per second = (warm-up + measured) requests simulated / wall seconds. The speed-up over
a tool is the median, over rounds, of that round's time of the tool ÷ latsim's time (the tools
of one round run back to back, so a load change on the machine hits them alike); the best-of
times are printed too. Each tool's mean wait per class is printed next to the exact M/M/c
non-preemptive priority value (Erlang C and Cobham's formula), so the reader sees that all
three simulate the same system. Goal: latsim ≥ 7× Ciw and ≥ 3.5× idiomatic SimPy. Nothing
here asserts on timings.

    python benchmarks/bench_speed.py [--requests 200000] [--repeats 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import datetime
import gc
import os
import platform
import random
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import ciw  # noqa: E402
import simpy  # noqa: E402
from common import class_stats, git_revision, report_header, write_report  # noqa: E402  (this folder is on sys.path when run as a script)

import simulator  # noqa: E402
from simulator import run, scenario_from_dict  # noqa: E402
from simulator.analytic import mmc_priority_mean_waits_ms  # noqa: E402

CLASSES = (("high", 0.3, 0), ("low", 0.7, 1))  # name, share, priority (smaller is served first)
NAMES = [name for name, _, _ in CLASSES]
GOALS = {"ciw": 7.0, "simpy": 3.5}


# --------------------------------------------------------------------------- theory


def priority_mean_waits_ms(rate_per_s: float, service_ms: float, workers: int) -> dict[str, float]:
    """Exact mean waits of M/M/c non-preemptive priority (Cobham with Erlang C), per class name."""
    ordered = sorted(CLASSES, key=lambda c: c[2])
    rates_per_ms = [share * rate_per_s / 1000.0 for _, share, _ in ordered]
    waits = mmc_priority_mean_waits_ms(workers, rates_per_ms, 1.0 / service_ms)
    return {name: wait for (name, _, _), wait in zip(ordered, waits)}


# --------------------------------------------------------------------------- the three tools


def run_latsim(args: argparse.Namespace, seed: int) -> dict:
    loaded = scenario_from_dict(
        {
            "name": "mm-priority-bench",
            "run": {"requests": args.requests, "warmup_requests": args.warmup, "replications": 1, "seed": seed},
            "workload": {
                "arrival": {"process": "poisson", "rate_per_s": args.rate},
                "classes": [
                    {"name": "high", "share": 0.3, "priority": 0, "deadline_ms": 50, "kind": "firm"},
                    {"name": "low", "share": 0.7, "priority": 1, "deadline_ms": 200, "kind": "soft", "target": 0.95},
                ],
            },
            "nodes": [
                {
                    "name": "node",
                    "workers": args.workers,
                    "discipline": {"policy": "priority"},
                    "service": {"distribution": "scipy", "name": "expon", "params": {"scale": args.service_ms}},
                }
            ],
        }
    )
    result = run(loaded, engine="simpy")
    out = {}
    for name, _, _ in CLASSES:
        out[name] = {
            "count": result.summary["classes"][name]["completed"],
            "wait_mean_ms": result.estimate("wait_ms.mean", name).estimate,
            "wait_p99_ms": result.estimate("wait_ms.p99", name).estimate,
            "latency_mean_ms": result.estimate("latency_ms.mean", name).estimate,
            "latency_p99_ms": result.estimate("latency_ms.p99", name).estimate,
        }
        wait = result.estimate("wait_ms.mean", name)
        out[name]["wait_mean_ci_ms"] = [wait.ci_low, wait.ci_high]
    return out


def run_simpy(args: argparse.Namespace, seed: int) -> dict:
    """The textbook SimPy model: a process per customer around a PriorityResource."""
    rng = random.Random(seed)
    env = simpy.Environment()
    server = simpy.PriorityResource(env, capacity=args.workers)
    mean_gap_ms = 1000.0 / args.rate
    service_rate = 1.0 / args.service_ms
    total, warmup = args.warmup + args.requests, args.warmup
    high_share = CLASSES[0][1]
    priorities = [c[2] for c in CLASSES]
    classes, waits, latencies = [], [], []

    def customer(number: int, cls: int):
        arrived = env.now
        with server.request(priority=priorities[cls]) as turn:
            yield turn
            started = env.now
            yield env.timeout(rng.expovariate(service_rate))
        if number >= warmup:
            classes.append(cls)
            waits.append(started - arrived)
            latencies.append(env.now - arrived)

    def source():
        for number in range(total):
            yield env.timeout(rng.expovariate(1.0 / mean_gap_ms))
            env.process(customer(number, 0 if rng.random() < high_share else 1))

    env.process(source())
    env.run()
    return class_stats(np.array(classes), np.array(waits), np.array(latencies), NAMES)


def run_ciw(args: argparse.Namespace, seed: int) -> dict:
    """Ciw with one Exponential arrival stream per class and priority classes (times in ms)."""
    ciw.seed(seed)
    rate_per_ms = args.rate / 1000.0
    network = ciw.create_network(
        arrival_distributions={name: [ciw.dists.Exponential(rate=share * rate_per_ms)] for name, share, _ in CLASSES},
        service_distributions={name: [ciw.dists.Exponential(rate=1.0 / args.service_ms)] for name, _, _ in CLASSES},
        number_of_servers=[args.workers],
        priority_classes={name: priority for name, _, priority in CLASSES},
    )
    simulation = ciw.Simulation(network)
    simulation.simulate_until_max_customers(args.warmup + args.requests, method="Finish")
    records = simulation.get_all_records()
    index = {name: i for i, (name, _, _) in enumerate(CLASSES)}
    # id_number counts arrivals across classes, so this drops the first `warmup` arrivals.
    measured = [r for r in records if r.id_number > args.warmup]
    return class_stats(
        np.array([index[r.customer_class] for r in measured]),
        np.array([r.waiting_time for r in measured]),
        np.array([r.exit_date - r.arrival_date for r in measured]),
        NAMES,
    )


TOOLS = {"latsim": run_latsim, "simpy": run_simpy, "ciw": run_ciw}


# --------------------------------------------------------------------------- driver


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200_000, help="measured requests per tool (default 200000)")
    parser.add_argument("--warmup", type=int, default=None, help="warm-up requests (default requests/10)")
    parser.add_argument("--repeats", type=int, default=5, help="rounds (each tool once per round; default 5)")
    parser.add_argument("--rate", type=float, default=320.0, help="arrival rate per second (default 320)")
    parser.add_argument("--workers", type=int, default=4, help="workers / servers (default 4)")
    parser.add_argument("--service-ms", type=float, default=10.0, help="mean exponential service time (default 10)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--tools", default="latsim,simpy,ciw", help="comma-separated subset of latsim,simpy,ciw")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="write the numbers as JSON")
    args = parser.parse_args(argv)
    if args.warmup is None:
        args.warmup = args.requests // 10
    args.tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    unknown = set(args.tools) - set(TOOLS)
    if unknown:
        parser.error(f"unknown tools {sorted(unknown)}; choose from {list(TOOLS)}")
    if args.repeats < 1 or args.requests < 1:
        parser.error("--repeats and --requests must be at least 1")
    return args


def fmt_loadavg(load: tuple[float, float, float]) -> str:
    return " / ".join(f"{x:.2f}" for x in load)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    rho = args.rate / 1000.0 * args.service_ms / args.workers
    total = args.warmup + args.requests
    load_before = os.getloadavg()
    print(f"latsim speed benchmark  {datetime.datetime.now().isoformat(timespec='seconds')}")
    print(
        f"system: M/M/{args.workers} non-preemptive priority, λ={args.rate:g}/s, mean service {args.service_ms:g} ms, "
        f"ρ={rho:.2f}; classes " + ", ".join(f"{n} share {s} prio {p}" for n, s, p in CLASSES)
    )
    print(f"each tool: {args.warmup} warm-up + {args.requests} measured requests; {args.repeats} rounds, seed {args.seed}")
    print(
        f"host: {platform.node()} {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"latsim {simulator.__version__} at {git_revision()}, simpy {simpy.__version__}, ciw {ciw.__version__}, numpy {np.__version__}"
    )
    print(f"load average before (1/5/15 min): {fmt_loadavg(load_before)}  (other work on the machine slows every tool)")
    if rho >= 1:
        sys.exit(f"ρ = {rho:.2f} ≥ 1: unstable system, nothing to compare")

    times: dict[str, list[float]] = {tool: [] for tool in args.tools}
    stats: dict[str, dict] = {}
    for round_ in range(args.repeats):
        for tool in args.tools:
            gc.collect()
            started = time.perf_counter()
            result = TOOLS[tool](args, args.seed)
            elapsed = time.perf_counter() - started
            times[tool].append(elapsed)
            stats[tool] = result  # same seed every round: identical results
            print(f"  round {round_ + 1}/{args.repeats} {tool:<7} {elapsed:8.2f} s", flush=True)
    load_after = os.getloadavg()

    theory = priority_mean_waits_ms(args.rate, args.service_ms, args.workers)
    best = {tool: min(ts) for tool, ts in times.items()}
    rate = {tool: total / best[tool] for tool in best}
    paired = {  # per tool: the median over rounds of (its time ÷ latsim's time in that round)
        tool: float(np.median(np.array(times[tool]) / np.array(times["latsim"]))) for tool in times if "latsim" in times
    }

    print()
    print(f"{'tool':<8} {'best s':>8} {'req/s':>10} {'vs':>7} │ " + " │ ".join(
        f"{name + ' wait mean':>15} {'p99 lat':>8}" for name, _, _ in CLASSES))
    print("─" * (38 + 27 * len(CLASSES)))
    for tool in args.tools:
        vs = f"{paired[tool]:.2f}×" if tool in paired and tool != "latsim" else "—"
        cells = " │ ".join(
            f"{stats[tool][name]['wait_mean_ms']:12.3f} ms {stats[tool][name]['latency_p99_ms']:8.2f}" for name, _, _ in CLASSES
        )
        print(f"{tool:<8} {best[tool]:8.2f} {rate[tool]:10,.0f} {vs:>7} │ {cells}")
    print(f"{'theory':<8} {'':>8} {'':>10} {'':>7} │ " + " │ ".join(
        f"{theory[name]:12.3f} ms {'':>8}" for name, _, _ in CLASSES))
    if "latsim" in stats:
        print("latsim 95% CI of mean wait: " + ", ".join(
            f"{name} [{stats['latsim'][name]['wait_mean_ci_ms'][0]:.3f}, {stats['latsim'][name]['wait_mean_ci_ms'][1]:.3f}] ms"
            for name, _, _ in CLASSES))
    print("'vs' = median over rounds of that tool's time ÷ latsim's time; p99 lat = p99 latency in ms (wait + service)")

    ratios = {}
    if "latsim" in rate:
        print()
        for tool, goal in GOALS.items():
            if tool in rate:
                ratios[f"latsim/{tool}"] = paired[tool]
                verdict = "meets" if ratios[f"latsim/{tool}"] >= goal else "MISSES"
                print(f"goal latsim ≥ {goal:g}× {tool}: measured {ratios[f'latsim/{tool}']:.2f}×  → {verdict} the goal")
    print(f"load average after (1/5/15 min): {fmt_loadavg(load_after)}")

    report = {
        **report_header("bench_speed", load_before, load_after),
        "versions": {"latsim": simulator.__version__, "simpy": simpy.__version__, "ciw": ciw.__version__,
                     "numpy": np.__version__},
        "system": {"rate_per_s": args.rate, "service_mean_ms": args.service_ms, "workers": args.workers, "rho": rho,
                   "classes": [{"name": n, "share": s, "priority": p} for n, s, p in CLASSES]},
        "requests": args.requests,
        "warmup_requests": args.warmup,
        "repeats": args.repeats,
        "seed": args.seed,
        "theory_wait_mean_ms": theory,
        "tools": {tool: {"seconds": times[tool], "best_seconds": best[tool], "requests_per_s": rate[tool],
                         "classes": stats[tool]} for tool in args.tools},
        "ratios": ratios,  # median of paired (same-round) time ratios
        "goals": {f"latsim/{tool}": goal for tool, goal in GOALS.items()},
    }
    write_report(args.json, report)
    return report


if __name__ == "__main__":
    main()
