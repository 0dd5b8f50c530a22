"""Fingerprints of every shipped scenario's outputs, to show that a refactoring changed no number.

Runs ``latsim run`` on each ``scenarios/*.yaml`` with a fixed seed and a short run, and prints a
SHA-256 of the summary JSON, of the per-request records and of the time series. ``--save DIR``
keeps the fingerprints; ``--against DIR`` compares with fingerprints saved before (exit 1 on any
difference). Usage, before and after a change:

    python tools/fingerprint_scenarios.py --save /tmp/before
    python tools/fingerprint_scenarios.py --against /tmp/before
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def fingerprint(scenario: Path, requests: int, replications: int, seed: int) -> dict[str, str]:
    """Hashes of one scenario's summary, records and time series for a short fixed-seed run."""
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "out"
        command = [sys.executable, "-m", "simulator", "run", str(scenario), "--requests", str(requests),
                   "--replications", str(replications), "--seed", str(seed), "--out", str(out), "--quiet"]
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        if done.returncode != 0:
            return {"error": f"exit {done.returncode}: {done.stderr.strip()[-300:]}"}
        summary = json.loads((out / "summary.json").read_text())
        summary.pop("engine", None)  # which engine ran is not a number: both give the same ones
        records = pd.read_parquet(out / "requests.parquet")
        timeseries = pd.read_parquet(out / "timeseries.parquet")
        return {
            "summary": _sha(json.dumps(summary, sort_keys=True).encode()),
            "records": _sha(records.to_csv(index=False).encode()),
            "timeseries": _sha(timeseries.to_csv(index=False).encode()),
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--replications", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--save", type=Path)
    parser.add_argument("--against", type=Path)
    options = parser.parse_args()
    prints = {}
    for scenario in sorted((ROOT / "scenarios").glob("*.yaml")):
        prints[scenario.name] = fingerprint(scenario, options.requests, options.replications, options.seed)
        print(f"{scenario.name:28s} {json.dumps(prints[scenario.name])}", flush=True)
    if options.save:
        options.save.mkdir(parents=True, exist_ok=True)
        (options.save / "fingerprints.json").write_text(json.dumps(prints, indent=2) + "\n")
    if options.against:
        before = json.loads((options.against / "fingerprints.json").read_text())
        changed = sorted(name for name in before.keys() | prints.keys() if before.get(name) != prints.get(name))
        print("identical to the saved fingerprints" if not changed else f"CHANGED: {', '.join(changed)}")
        return 1 if changed else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
