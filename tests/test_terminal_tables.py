"""Terminal tables fit the terminal: at 80 columns as at 200, every number is shown in full (never cut with '…')."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from rich.cells import cell_len
from rich.console import Console

from simulator.report.table import INTERVAL_BREAK, Column, print_table

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("columns", [80, 200])
def test_run_output_fits_and_shows_every_p99(tmp_path, columns):
    summary_path = tmp_path / "summary.json"
    completed = subprocess.run(
        [sys.executable, "-m", "simulator", "run", "scenarios/quickstart.yaml", "--requests", "3000", "--replications", "3",
         "--quiet", "--json", str(summary_path)],
        capture_output=True, text=True, timeout=300, cwd=REPO, env={**os.environ, "COLUMNS": str(columns)},
    )
    assert completed.returncode == 0, completed.stderr
    output = completed.stdout
    assert "…" not in output
    assert max(cell_len(line) for line in output.splitlines()) <= columns
    summary = json.loads(summary_path.read_text())
    words = set(re.findall(r"[^\s│┃]+", output))
    for name, entry in summary["classes"].items():
        p99 = entry["latency_ms"]["p99"]
        assert f"{p99['estimate']:.2f}" in words, (name, output)
        reach = f"{p99['ci_high'] - p99['estimate']:.2f}"
        assert f"±{reach}" in words or f"+{reach}/−{p99['estimate'] - p99['ci_low']:.2f}" in words, (name, output)


def _printed(width: int, columns: list[Column], rows: list[list[str]], keys: int = 1) -> str:
    buffer = io.StringIO()
    print_table(Console(file=buffer, width=width), "title", columns, rows, keys=keys)
    return buffer.getvalue()


def test_a_wide_table_folds_intervals_then_splits_repeating_its_keys():
    columns = [Column("class", "left"), *(Column(f"p{index}") for index in range(8)), Column("SLO", "left", free=True)]
    rows = [["interactive", *(f"{1234.5678 * index:.2f}{INTERVAL_BREAK}+{index:.2f}/−{index / 2:.2f}" for index in range(8)),
             "violated (miss ≤ 0.01; 12 of 1000 missed, P(miss) ≤ 0.021)"]]
    wide = _printed(300, columns, rows)
    assert "(1 of" not in wide and "1234.57 +1.00/−0.50" in wide  # fits on one line: the interval beside its estimate
    narrow = _printed(60, columns, rows)
    assert "…" not in narrow and "(1 of " in narrow
    assert max(cell_len(line) for line in narrow.splitlines()) <= 60
    words = set(re.findall(r"[^\s│┃]+", narrow))
    for index in range(8):
        assert f"{1234.5678 * index:.2f}" in words and f"+{index:.2f}/−{index / 2:.2f}" in words
    assert narrow.count("interactive") == narrow.count("title (")  # the key column in every part
    assert "P(miss)" in narrow and "0.021)" in narrow


def test_a_firm_class_without_target_says_why_it_has_no_verdict(tmp_path):
    from simulator import load_scenario, run
    from simulator.report.table import print_summary

    summary = run(load_scenario(REPO / "scenarios" / "quickstart.yaml"), requests=2000, replications=2).summary
    summary["classes"]["interactive"]["slo"]["verdict"] = None  # what a firm class without `target` gets
    buffer = io.StringIO()
    print_summary(summary, Console(file=buffer, width=200))
    row = next(line for line in buffer.getvalue().splitlines() if "interactive" in line and "firm" in line)
    assert "not judged: give the class a target" in row
