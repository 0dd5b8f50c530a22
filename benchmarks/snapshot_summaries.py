"""Run summaries of many scenarios as one JSON file, to check that a change leaves every number as it was.

Not a benchmark of speed: the tool behind "byte-identical" claims of refactors and speed-ups. It runs
each shipped scenario (the capacity plans aside) at 1 and 3 replications with at most 30 000
requests, and ``bench_fastpath.py``'s M/M/1 and M/M/4-priority systems on both engines (1 and 4
replications, and M/M/4 with a bounded queue that drops), all at fixed seeds, and writes their
summaries (sorted keys). Run it on two checkouts and compare the files:

    python benchmarks/snapshot_summaries.py /tmp/before.json   # in the old checkout
    python benchmarks/snapshot_summaries.py /tmp/after.json    # in the new one
    cmp /tmp/before.json /tmp/after.json

A scenario that fails records its error instead, so a change of error shows up too (~20 s).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from common import ROOT  # this folder is on sys.path when run as a script

sys.path.insert(0, str(ROOT))

import bench_fastpath  # noqa: E402

from simulator import load_scenario, run, scenario_from_dict  # noqa: E402

MAX_REQUESTS = 30_000
SEED = 3


def shipped(summaries: dict[str, object]) -> None:
    for path in sorted((ROOT / "scenarios").glob("*.yaml")):
        if path.name.startswith("plan-"):
            continue
        for replications in (1, 3):
            scenario = load_scenario(path)
            requests = min(scenario.run.requests, MAX_REQUESTS)
            warmup = min(scenario.run.warmup_requests or 0, requests // 5) or None
            scenario = scenario.replace("run.requests", requests).replace("run.replications", replications)
            key = f"{path.name}|{replications}"
            try:
                summaries[key] = run(scenario.replace("run.warmup_requests", warmup), seed=SEED).summary
            except Exception as error:  # recorded, so that a changed error shows as a difference  # noqa: BLE001
                summaries[key] = repr(error)


def queues(summaries: dict[str, object]) -> None:
    args = argparse.Namespace(rate_mm1=80.0, rate_mm4=320.0, service_ms=10.0, seed=1)
    for system in ("mm1", "mm4"):
        for replications in (1, 4):
            data = bench_fastpath.scenario(system, args, 50_000, 5_000)
            data["run"]["replications"] = replications
            for engine in ("fast", "simpy"):
                summaries[f"{system}|{replications}|{engine}"] = run(scenario_from_dict(data), engine=engine).summary
    bounded = bench_fastpath.scenario("mm4", args, 50_000, 5_000)
    bounded["nodes"][0]["queue_capacity"] = 5
    for engine in ("fast", "simpy"):
        summaries[f"mm4-bounded|{engine}"] = run(scenario_from_dict(bounded), engine=engine).summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="the JSON file to write")
    args = parser.parse_args(argv)
    summaries: dict[str, object] = {}
    shipped(summaries)
    queues(summaries)
    args.out.write_text(json.dumps(summaries, indent=1, sort_keys=True, default=str), encoding="utf-8")
    print(f"{len(summaries)} summaries → {args.out}")


if __name__ == "__main__":
    main()
