"""A testbed campaign end to end, small: a tiny model served for real to two priority classes,
profiled, loaded open-loop twice, calibrated, predicted both ways and reported (tens of seconds)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

pytest.importorskip("aiohttp")
pytest.importorskip("torch")

from simulator.report.testbed import write_testbed_report  # noqa: E402
from simulator.testbed.report_data import report_data  # noqa: E402
from simulator.scenario.loader import load_scenario  # noqa: E402
from simulator.scenario.calibration import machine_at, read_calibration  # noqa: E402
from simulator.testbed.calibrate import write_calibration  # noqa: E402
from simulator.testbed.campaign import run_campaign  # noqa: E402
from simulator.testbed.campaign_file import read_campaign  # noqa: E402
from simulator.testbed.compare import (  # noqa: E402
    CALIBRATED,
    MEASURED,
    PROFILE,
    compare_campaign,
    error_summary,
    predicted_statistics,
)

BUNDLE = Path(__file__).resolve().parent.parent / "profiles" / "cpu-amd-epyc-2c-avx512" / "zoo"
SCENARIO = {
    "name": "smoke <testbed>",
    "workload": {
        "arrival": {"process": "poisson", "rate_per_s": 100},
        "classes": [
            {"name": "urgent", "share": 1, "priority": 0, "deadline_ms": 20, "kind": "soft", "target": 0.9},
            {"name": "bulk", "share": 2, "priority": 1},
        ],
    },
    "nodes": [{
        "name": "server", "workers": 1, "discipline": {"policy": "priority"},
        "service": {"distribution": "profile", "bundle": str(BUNDLE), "family": "mlp", "variant": "fp32", "threads": 1},
    }],
}


@pytest.fixture(scope="module")
def campaign(tmp_path_factory):
    folder = tmp_path_factory.mktemp("campaign")
    scenario = folder / "scenario.yaml"
    scenario.write_text(yaml.safe_dump(SCENARIO))
    run_campaign(
        scenario, [0.4], 2, folder / "out", duration_s=2.0, model_size="tiny", capacity_requests=300,
        profile_requests=100, profile_snapshots=2, max_p99_lateness_ms=100.0, max_lateness_ms=1000.0,  # a busy CI machine: still valid
    )
    return folder / "out"


def test_a_campaign_writes_its_runs_and_a_scenario_latsim_runs_for_each(campaign):
    document = read_campaign(campaign)
    assert [(run["level"], run["repeat"]) for run in document["runs"]] == [(0.4, 0), (0.4, 1)]
    assert all(run["valid"] for run in document["runs"]), document["runs"]
    assert document["capacity"]["worker_limit_per_s"] > 0
    profile = pd.read_parquet(campaign / "profile" / "profile.parquet")
    assert profile.groupby("snapshot").size().to_dict() == {0: 90, 1: 90} and (profile["status"] == 200).all()  # warm-up left out
    assert document["profile_snapshots"] == 2
    table = pd.read_parquet(campaign / "level-0.40" / "repeat-0" / "requests.parquet")
    assert set(table["class"]) == {"urgent", "bulk"} and (table["status"] == 200).all()
    for path in (campaign / "predictions" / "level-0.40" / "profile" / "profile.yaml",
                 campaign / "predictions" / "level-0.40" / "repeat-1" / "measured.yaml"):
        scenario = load_scenario(path)
        assert [c.name for c in scenario.workload.classes] == ["urgent", "bulk"]
        assert scenario.nodes[0].discipline.policy == "priority"


def test_calibration_holds_overhead_and_per_level_speed_and_outside_time(campaign, tmp_path):
    calibration = read_calibration(write_calibration(campaign, tmp_path / "calibration.yaml"))
    assert len(calibration["overhead"]["occupancy"]) == len(calibration["overhead"]["mean_ms"]) >= 1
    [level] = calibration["levels"]
    assert level["level"] == 0.4 and len(level["runs"]) == 2  # one variant per valid run: the band's drift
    for machine in (level, *level["runs"]):
        assert len(machine["speed"]["factors"]) == 2 and all(f > 0 for f in machine["speed"]["factors"])
        assert Path(machine["outside"]["file"]).is_file()
    assert level["rate_per_s"] == pytest.approx(read_campaign(campaign)["runs"][0]["rate_per_s"])
    low, high = calibration["profile_drift"]
    assert 0 < low <= high
    at = machine_at(calibration, 1e6)  # the measured level of the nearest rate
    assert at.level == 0.4 and at.main["overhead"] == calibration["overhead"]
    assert len(at.variants["runs"]) == 2 and len(at.variants["drift"]) == 2  # one per run, one per end of the profile's drift
    assert at.variants["drift"][-1]["speed"]["factors"] == pytest.approx([f / high for f in at.main["speed"]["factors"]])


def test_compare_predicts_every_run_two_ways_and_reports(campaign, tmp_path):
    calibration = read_calibration(write_calibration(campaign, tmp_path / "calibration.yaml"))
    table = compare_campaign(campaign, calibration, requests=3000, replications=2, band_resamples=2)
    assert set(table["prediction"]) == {PROFILE, CALIBRATED, MEASURED}
    assert set(table["class"]) == {"all", "urgent", "bulk"}
    assert set(table["statistic"]) == {"mean", "p50", "p95", "p99", "deadline_met_ratio"}
    assert len(table) == 2 * 3 * 3 * 5  # runs × predictions × classes × statistics
    assert table["measured"].notna().all() and table["predicted"].notna().all()
    replayed = table[(table["prediction"] == MEASURED) & (table["class"] == "all") & (table["statistic"] == "mean")]
    assert replayed["error"].abs().max() < 0.5  # the run's own service process and arrivals: the model is close
    assert (table["band_low"].notna() == (table["prediction"] != MEASURED)).all()
    summary = error_summary(table)
    assert set(summary["prediction"]) == {PROFILE, CALIBRATED, MEASURED}
    written = write_testbed_report(report_data(campaign, table, tmp_path / "calibration.yaml"), tmp_path / "report")
    names = {path.name for path in written}
    assert {"comparison.csv", "report.md", "report.html", "p99-against-load.png", "distribution-0.40.png"} <= names
    html = (tmp_path / "report" / "report.html").read_text()
    assert "smoke &lt;testbed&gt;" in html and "smoke <testbed>" not in html  # user text escaped
    assert "http://" not in html and "https://" not in html  # self-contained: nothing loaded from a network


def test_a_prediction_the_inputs_say_cannot_keep_up_is_unknown_not_a_crash(tmp_path):
    overloaded = {
        "name": "overloaded", "workload": {"arrival": {"process": "poisson", "rate_per_s": 200}, "classes": [{"name": "a"}]},
        "nodes": [{"name": "n", "service": {"distribution": "deterministic", "value_ms": 10.0}}],
    }
    path = tmp_path / "overloaded.yaml"
    path.write_text(yaml.safe_dump(overloaded))
    statistics = predicted_statistics(path, ["a"])
    assert statistics["all"]["p99"] == {"estimate": None, "ci_low": None, "ci_high": None}


def test_latsim_fit_on_a_campaign_writes_its_calibration(campaign, tmp_path):
    """``latsim fit CAMPAIGN`` fits the machine, as ``testbed calibrate`` does; the bundle options are refused."""
    from typer.testing import CliRunner

    from simulator.cli import app

    result = CliRunner().invoke(app, ["fit", str(campaign), "--out", str(tmp_path / "fitted.yaml")])
    assert result.exit_code == 0, result.output
    fitted = read_calibration(tmp_path / "fitted.yaml")
    direct = read_calibration(write_calibration(campaign, tmp_path / "direct.yaml"))
    assert fitted["overhead"] == direct["overhead"] and fitted["profile_drift"] == direct["profile_drift"]
    assert [level["speed"] for level in fitted["levels"]] == [level["speed"] for level in direct["levels"]]
    refused = CliRunner().invoke(app, ["fit", str(campaign), "--out", str(tmp_path / "x.yaml"), "--family", "mlp"])
    assert refused.exit_code == 2 and "--family" in refused.output
