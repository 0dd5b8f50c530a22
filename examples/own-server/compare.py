"""Predict campaign B of the example server from its profile, raw and calibrated, and print the errors.

For each of B's runs: the measured p50 and p99 latency (the run's first tenth left out), latsim's prediction at
the run's rate from the profile alone (``scenario.yaml``) and with the calibration fitted on campaign A
(``calibrated.yaml``), and the relative errors.

    python examples/own-server/compare.py examples/own-server/logs/B-*.jsonl
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from simulator import load_scenario, run
from simulator.formats.request_log import read_request_log

HERE = Path(__file__).resolve().parent


def predicted(scenario_file: Path, rate_per_s: float) -> dict[str, float]:
    scenario = load_scenario(scenario_file).replace("workload.arrival.rate_per_s", rate_per_s)
    result = run(scenario, on_unstable="return")
    if result.status != "ok":
        return {"p50": float("inf"), "p99": float("inf")}
    latency = result.summary["classes"]["all"]["latency_ms"]
    return {key: latency[key]["estimate"] for key in ("p50", "p99")}


def main() -> None:
    print(f"{'rate/s':>7} {'stat':>4} {'measured':>9} {'raw':>9} {'error':>7} {'calibrated':>10} {'error':>7}")
    for path in sys.argv[1:]:
        log = read_request_log(Path(path))
        latency = log.latency_ms[int(len(log.latency_ms) * 0.1):]
        rate = log.offered_rate_per_s
        raw, calibrated = predicted(HERE / "scenario.yaml", rate), predicted(HERE / "calibrated.yaml", rate)
        for key, quantile in (("p50", 0.5), ("p99", 0.99)):
            measured = float(np.quantile(latency, quantile))
            print(f"{rate:7.0f} {key:>4} {measured:9.3f} {raw[key]:9.3f} {raw[key] / measured - 1:+7.1%} "
                  f"{calibrated[key]:10.3f} {calibrated[key] / measured - 1:+7.1%}")


if __name__ == "__main__":
    main()
