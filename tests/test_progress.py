"""Progress counts what it promises: measured requests (the warm-up is not counted against them), never past its total."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

import simulator.cli
from simulator import load_scenario, run
from simulator.cli import app

QUICKSTART = Path(__file__).resolve().parent.parent / "scenarios" / "quickstart.yaml"


@pytest.mark.parametrize("jobs", [1, 2])
def test_run_progress_counts_measured_requests_only(jobs):
    """The quickstart keeps a 10,000-request warm-up: counted too, 3,000 measured requests would show as 433 %."""
    reported = []
    run(load_scenario(QUICKSTART), requests=3000, replications=2, jobs=jobs, progress=reported.append)
    running = [sum(reported[: index + 1]) for index in range(len(reported))]
    assert max(running) <= 2 * 3000
    assert running[-1] == 2 * 3000  # every planned measured request finished: the bar ends at 100 %


def assert_never_past_total(text: str) -> None:
    percentages = [float(value) for value in re.findall(r"\((\d+(?:\.\d+)?)%\)", text)]
    assert percentages, text
    assert max(percentages) <= 100.0, text
    counts = [(int(done.replace(",", "")), int(total.replace(",", ""))) for done, total in re.findall(r"([\d,]+) of ([\d,]+)", text)]
    assert counts and all(done <= total for done, total in counts), text


def test_run_progress_lines_never_pass_100_percent(monkeypatch):
    monkeypatch.setattr(simulator.cli, "PROGRESS_LINE_EVERY_S", 0.0)  # a line at every chunk
    result = CliRunner().invoke(app, ["run", str(QUICKSTART), "--requests", "3000", "--replications", "2"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "6,000 measured requests in all" in result.stderr
    assert_never_past_total(result.stderr)
    assert "6,000 of 6,000 measured requests (100.0%)" in result.stderr
