"""Plan progress counts against an upper bound on every point the search may simulate: the bound holds from the start,
only falls as the search learns, and done never passes it (no progress past 100 %)."""

from __future__ import annotations

import re

import pytest

from simulator.planning.api import plan
from simulator.planning.search import _bisections_left, _lone, _pair
from simulator.scenario.loader import scenario_from_dict
from tests.test_plan import plan_scenario


def _progress(tmp_path, exhaustive: bool) -> tuple[list[tuple[int, int]], dict]:
    seen: list[tuple[int, int]] = []
    scenario = scenario_from_dict(plan_scenario({"replicas": [1, 2, 3, 4], "workers": [1, 2]}, max_load_tolerance=0.1))
    document = plan(scenario, tmp_path, progress=lambda done, total: seen.append((done, total)), exhaustive=exhaustive)
    return seen, document


@pytest.mark.parametrize("exhaustive", [False, True], ids=["search", "exhaustive"])
def test_the_total_is_an_upper_bound_that_only_falls(tmp_path, exhaustive):
    seen, document = _progress(tmp_path, exhaustive)
    done = document["search"]["points_simulated"] + document["search"]["points_reused"]
    assert seen[-1] == (done, done)  # the end: every point done, the bound met
    assert seen[0][1] >= done  # the first total already bounds what the plan did
    assert all(d <= t for d, t in seen)  # never past 100 %
    assert all(later[0] >= earlier[0] and later[1] <= earlier[1] for earlier, later in zip(seen, seen[1:]))


def test_a_bisection_bound_covers_splits_and_merges():
    """A lone gap needing h halvings: a verdict halves it, an inconclusive load splits it into two halves; two gaps either
    side of inconclusive loads: a verdict halves one, or merges them into one (a verdict beyond the inconclusive loads)."""
    assert [_lone(h) for h in range(4)] == [0, 1, 3, 5]
    for h in range(1, 12):
        assert _lone(h) >= 1 + _lone(h - 1) and _lone(h) >= 1 + _pair(h - 1, h - 1)
        for a in range(h):
            assert _pair(a + 1, h) >= 1 + max(_pair(a, h), _lone(a), _pair(a + 1, h - 1), _lone(h - 1))
    assert _bisections_left([(100.0, 125.0)], 0.1) == _lone(3)  # ⌈log2(ln 1.25 / ln 1.1)⌉ = 2 halvings, + 1 for rounding
    assert _bisections_left([(100.0, 105.0)], 0.1) == 0  # already narrower than the tolerance


def test_plan_progress_lines_show_done_of_at_most_and_time_left(tmp_path, monkeypatch):
    import yaml
    from typer.testing import CliRunner

    import simulator.cli
    from simulator.cli import app

    monkeypatch.setattr(simulator.cli, "PROGRESS_LINE_EVERY_S", 0.0)  # a line at every point
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(plan_scenario({"replicas": [1, 2, 3]}, max_load_tolerance=0.1)), encoding="utf-8")
    result = CliRunner().invoke(app, ["plan", str(path), "--out", str(tmp_path / "out"), "--jobs", "1"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    lines = re.findall(r"(\d[\d,]*) of at most (\d[\d,]*) points \((\d+\.\d)%\)", result.stderr)
    assert lines, result.stderr
    counts = [(int(done.replace(",", "")), int(total.replace(",", "")), float(share)) for done, total, share in lines]
    assert all(done <= total and share <= 100.0 for done, total, share in counts)
    assert counts[-1][0] == counts[-1][1] and counts[-1][2] == 100.0
    assert "s left" in result.stderr


@pytest.mark.parametrize("half_width", [0.01, 0.08, 0.3])
def test_the_bound_holds_however_many_verdicts_are_inconclusive(half_width):
    """Synthetic verdicts (no simulation): wide intervals leave many loads inconclusive, so bisections split and merge
    their gaps; the first bound still covers every point, and done never passes the bound reported."""
    from tests.test_plan_exact import synthetic_planner

    true_max = {(workers, replicas): 60.0 * workers * replicas ** 0.9 for workers in (1, 2) for replicas in (1, 2, 3, 4)}
    planner = synthetic_planner(true_max, half_width, 150.0)
    seen: list[tuple[int, int]] = []
    planner.evaluator.progress = lambda done, total: seen.append((done, total))
    first = planner.plan_bound(exhaustive=False)
    planner.search(exhaustive=False)
    done = planner.evaluator.simulated
    assert done > 0 and first >= done and seen[-1] == (done, done)
    assert all(d <= t <= first for d, t in seen)
    assert all(later[1] <= earlier[1] for earlier, later in zip(seen, seen[1:]))
