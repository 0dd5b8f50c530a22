"""``latsim report``: every section of the capacity report, escaped user text, no network, and a real browser opens it."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from simulator.planning.api import load_result, plan
from simulator.report.capacity import _closest, report_context, write_report
from simulator.report.disagreements import UTILIZATION_TOLERANCE
from simulator.report.plan_plots import FIGURES, draw_all
from simulator.report.render import markdown_escape
from simulator.scenario.loader import scenario_from_dict
from tests.test_plan import plan_scenario

ROOT = Path(__file__).resolve().parent.parent
HOSTILE_NAME = 'mmc <script>alert("x")</script> | *bold*'
SECTIONS = ("verdict", "method", "top", "search", *FIGURES, "analytic", "what-if", "candidates", "inputs")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    """A small plan whose scenario name and description are hostile HTML and Markdown, and its report."""
    data = plan_scenario({"replicas": [3], "workers": [1, 2]}, max_load_tolerance=0.1)
    data["name"] = HOSTILE_NAME
    data["description"] = 'served <img src="https://example.com/x.png"> & more'
    results = tmp_path_factory.mktemp("plan")
    plan(scenario_from_dict(data), results)
    write_report(results, results / "report")
    return results / "report"


def test_the_html_report_has_every_section_and_embeds_every_plot(report):
    html = (report / "report.html").read_text(encoding="utf-8")
    for section in SECTIONS:
        assert f'id="{section}"' in html, section
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(images) == len(FIGURES) and all(base64.b64decode(image).startswith(PNG_MAGIC) for image in images)
    assert "VALID" in html and "Best configuration:" in html


def test_the_html_report_escapes_user_text_and_loads_nothing(report):
    html = (report / "report.html").read_text(encoding="utf-8")
    assert "<script" not in html and "&lt;script&gt;" in html
    assert '<img src="https' not in html and "&lt;img src=" in html
    assert "Content-Security-Policy" in html and "default-src 'none'" in html
    assert not re.search(r'(src|href)="(https?:)?//', html)


def test_the_markdown_twin_has_every_section_and_its_plots(report):
    markdown = (report / "report.md").read_text(encoding="utf-8")
    for heading in ("## Verdict", "## How much data", "## Top configurations", "## The search", "## Analytic bounds", "## What if",
                    "## Every candidate", "## Inputs", *(f"### {title}" for title, _, _ in FIGURES.values())):
        assert heading in markdown, heading
    for name in FIGURES:
        assert f"(plots/{name}.png)" in markdown and (report / "plots" / f"{name}.png").read_bytes().startswith(PNG_MAGIC)
    prose = re.sub(r"```.*?```", "", markdown, flags=re.S)  # inside a fenced block text is shown as it is, never rendered
    assert "&lt;script&gt;" in prose and r"\| \*bold\*" in prose and "<script" not in prose


def test_markdown_escape_keeps_a_table_cell_one_cell():
    assert markdown_escape("a|b\n# c <d>") == r"a\|b # c &lt;d&gt;"
    assert markdown_escape("# title") == r"\# title"


def test_markdown_escape_shows_a_version_as_written_and_still_stops_a_list():
    """"0.1.0" starts no list (no space after the dot): shown as is, not as \\0.1.0; "1. x" and "2) y" are escaped."""
    assert markdown_escape("0.1.0") == "0.1.0" and markdown_escape("3.11.7") == "3.11.7"
    assert markdown_escape("1. x") == r"1\. x" and markdown_escape("2) y") == r"2\) y" and markdown_escape("7.") == r"7\."


def test_a_plan_nothing_meets_answers_with_the_closest_configurations(tmp_path):
    """An SLO below the service time: theory rules every configuration out; the report says so (INVALID) and shows the
    closest configurations with their figures (what they miss by how much, the load they sustain), not empty stubs."""
    data = plan_scenario({"replicas": [1, 2]}, slos={"a": {"percentile": "p90", "latency_ms": 5}})
    document = plan(scenario_from_dict(data), tmp_path)
    assert document["finalists"] == [] and document["search"]["points_simulated"] == 0
    html = (write_report(tmp_path)[0]).read_text(encoding="utf-8")
    drawn = [name for name in FIGURES if name in draw_all(document)]
    assert drawn == ["cost-frontier"] or drawn == []
    for section in (*(s for s in SECTIONS if s not in FIGURES), *drawn, "closest"):
        assert f'id="{section}"' in html, section
    assert "No data" not in html and "Not drawn: Latency CDF" in html
    assert "INVALID" in html and "No configuration of the 2 searched meets every SLO" in html
    context = report_context(document)
    assert len(context["closest"]) == 2
    one, two = sorted(context["closest"], key=lambda row: row["cost_per_hour"])  # 1 replica overloads; 2 are too slow
    assert re.fullmatch(r"cannot keep up: offered load 1\.\d+ ≥ 1 at the target \(theory\)", one["miss"]), one["miss"]
    assert re.match(r"misses a p90 ≤ 5 ms by at least \d+\.\d % \(a sound lower bound of [\d.]+ ms", two["miss"]), two["miss"]
    for row in (one, two):
        assert re.fullmatch(r"at most [\d.,]+/s \(theory: offered load 1\)", row["sustains"]) and row["shortfall"] > 0
    assert "The closest: " in context["sentence"] and context["closest"][0]["miss"] in context["sentence"]
    assert context["analytic"] and all(row["item"] is None for row in context["analytic"])  # theory alone: nothing simulated


def test_the_closest_configurations_rank_by_how_far_they_miss():
    slo = {"label": "p99 of a ≤ 10 ms", "metric": "latency_ms.p99", "bound": 10.0}
    def config(identifier, cost, estimate):
        item = {"label": slo["label"], "estimate": estimate, "ci_low": estimate - 1, "ci_high": estimate + 1, "verdict": "violated",
                "margin": (10.0 - estimate) / 10.0}
        outcome = {"items": [item], "full": False, "reason": "violated"}
        return {"id": identifier, "label": identifier, "cost_per_hour": cost, "full": None, "screen": outcome, "theory": None,
                "max_load": {"full": None, "screen": {"low_per_s": 80.0, "high_per_s": 90.0, "full": False}}}
    document = {"inputs": {"slos": [slo]}, "configurations": [config("far", 1.0, 30.0), config("near", 2.0, 12.0), config("nearer", 3.0, 11.0)]}
    closest = _closest(document)
    assert [row["id"] for row in closest] == ["nearer", "near", "far"]
    assert closest[0]["miss"] == "misses p99 of a ≤ 10 ms by 10.0 % (11 [10, 12], violated in screening runs)"
    assert closest[0]["sustains"] == "80/s (simulated, screening runs)"


def test_every_html_table_scrolls_inside_the_page(report):
    """A wide table (the top configurations with one column per SLO) scrolls in its own box instead of being clipped."""
    html = (report / "report.html").read_text(encoding="utf-8")
    assert html.count("<table>") == html.count('<div class="scroll"><table>') > 0
    assert ".scroll { overflow-x: auto" in html


def test_the_analytic_table_explains_every_disagreement(report):
    """A row explains exactly the disagreements it has (the estimate outside the simulated interval, utilisation off the
    offered load), and says "they agree" otherwise."""
    rows = report_context(load_result(report.parent))["analytic"]
    assert rows
    for row in rows:
        item, estimate = row["item"], row["bound"]["estimate_ms"]
        off_estimate = estimate is not None and item is not None and not item["ci_low"] <= estimate <= item["ci_high"]
        off_load = row["utilization"] is not None and abs(row["utilization"] - row["offered_load"]) > UTILIZATION_TOLERANCE
        assert [why.startswith("the M/G/c estimate is") for why in row["why"]].count(True) == off_estimate
        assert ["than theory" in why for why in row["why"]].count(True) == off_load
    html = (report / "report.html").read_text(encoding="utf-8")
    assert "<th>why they differ</th>" in html and html.count("they agree") == sum(not row["why"] for row in rows)


def test_the_calibration_block_is_shown_on_top_and_older_plans_still_render(report):
    document = load_result(report.parent)
    assert report_context(document)["calibration"].startswith("This answer rests on raw profiles: sized from raw profiles")
    html = (report / "report.html").read_text(encoding="utf-8")
    assert html.index('class="calibration"') < html.index('id="verdict"')
    calibrated = {**document, "calibration": {"calibrated": True, "files": ["cal/a.yaml"], "raw_profile": {
        "winner": "w1", "label": "3 × cpu", "cost_per_hour": 1.5, "max_load": {"low_per_s": 120.0}}}}
    assert report_context(calibrated)["calibration"] == (
        "Calibrated from cal/a.yaml; the raw profiles would have chosen 3 × cpu at 1.5 per hour, sustaining 120/s.")
    older = {key: value for key, value in document.items() if key != "calibration"}
    assert report_context(older)["calibration"] is None


def test_report_command_names_a_missing_results_file(tmp_path):
    completed = subprocess.run([sys.executable, "-m", "simulator", "report", str(tmp_path)], capture_output=True, text=True, cwd=ROOT)
    assert completed.returncode == 2 and "plan.json" in completed.stderr


BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")
HEADLESS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--enable-logging=stderr", "--v=0"]


@pytest.mark.skipif(BROWSER is None, reason="chromium is not installed (apt-get install chromium)")
def test_a_headless_browser_opens_the_report_without_console_errors(report, tmp_path):
    """Real headless chromium: a screenshot is taken, the DOM has every section, and the log has no console message or refused load."""
    url = (report / "report.html").resolve().as_uri()
    screenshot = tmp_path / "report.png"
    shot = subprocess.run(
        [BROWSER, *HEADLESS, f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={screenshot}", "--window-size=1200,3000", url],
        capture_output=True, text=True, timeout=120,
    )
    dom = subprocess.run(
        [BROWSER, *HEADLESS, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", url], capture_output=True, text=True, timeout=120,
    )
    assert shot.returncode == 0 and dom.returncode == 0, shot.stderr[-2000:] + dom.stderr[-2000:]
    assert screenshot.read_bytes().startswith(PNG_MAGIC) and screenshot.stat().st_size > 20_000
    assert all(f'id="{section}"' in dom.stdout for section in SECTIONS)
    log = shot.stderr + dom.stderr
    problems = [line for line in log.splitlines() if re.search(r"CONSOLE|Refused to|Failed to load|Uncaught|net::ERR_", line)]
    assert not problems, problems


def test_plan_command_writes_the_report_and_exits_1_when_nothing_meets(tmp_path):
    """`latsim plan --report`: results and report written; exit 1 because no configuration meets the SLOs."""
    import yaml

    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(plan_scenario({"replicas": [1, 2]}, slos={"a": {"percentile": "p90", "latency_ms": 5}})), encoding="utf-8")
    command = [sys.executable, "-m", "simulator", "plan", str(path), "--out", str(tmp_path / "out"), "--report", str(tmp_path / "report"), "--jobs", "1"]
    completed = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert completed.returncode == 1, completed.stderr
    assert "no configuration of the space meets every SLO" in completed.stdout and "theory 2" in completed.stdout
    assert (tmp_path / "out" / "plan.json").is_file() and (tmp_path / "report" / "report.html").is_file()
