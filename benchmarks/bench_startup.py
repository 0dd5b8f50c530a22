"""Start-up cost of the command line: cumulative import time of ``simulator.cli`` and wall time of quick commands.

Each measurement runs in a fresh interpreter, ``--repeats`` times; the median counts. The
reference, measured in the same run, is a bare ``python -c pass``. Goals: the cumulative import
time of ``simulator.cli`` below 1 s, ``latsim schema`` below 1.5 s wall.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import ROOT, git_revision, write_report

SCENARIO = ROOT / "scenarios" / "quickstart.yaml"


def import_seconds() -> float:
    """Cumulative import time of simulator.cli, from ``python -X importtime``."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", "import simulator.cli"], cwd=ROOT,
                          capture_output=True, text=True, check=True)
    line = next(line for line in done.stderr.splitlines() if line.rstrip().endswith("| simulator.cli"))
    return int(line.split("|")[1]) / 1e6


def wall_seconds(arguments: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, *arguments], cwd=ROOT, capture_output=True, check=True)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--json", type=Path, default=None, metavar="PATH")
    args = parser.parse_args(argv)
    commands = {
        "python -c pass (reference)": ["-c", "pass"],
        "latsim --help": ["-m", "simulator", "--help"],
        "latsim schema": ["-m", "simulator", "schema"],
        "latsim validate quickstart.yaml": ["-m", "simulator", "validate", str(SCENARIO)],
    }
    load_before = os.getloadavg()
    imports = [import_seconds() for _ in range(args.repeats)]
    walls = {name: [] for name in commands}
    for _ in range(args.repeats):  # interleaved, so that other load hits every command alike
        for name, arguments in commands.items():
            walls[name].append(wall_seconds(arguments))
    reference = statistics.median(walls["python -c pass (reference)"])
    report = {
        "revision": git_revision(),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "import_simulator_cli_s": statistics.median(imports),
        "wall_s": {name: statistics.median(values) for name, values in walls.items()},
    }
    print(f"import simulator.cli (cumulative, -X importtime): {report['import_simulator_cli_s']:.3f} s (goal < 1 s)")
    for name, seconds in report["wall_s"].items():
        print(f"{name:34s} {seconds:6.3f} s wall  ({seconds / reference:5.1f}x python -c pass)")
    print(f"load average before/after: {load_before} / {report['load_average_after']}")
    write_report(args.json, report)
    return report


if __name__ == "__main__":
    main()
