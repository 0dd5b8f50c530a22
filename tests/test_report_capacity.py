"""``latsim report``: every section of the capacity report, escaped user text, no network, and a real browser opens it."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from simulator.planning.api import plan
from simulator.report.capacity import write_report
from simulator.report.plan_plots import FIGURES
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


def test_a_plan_nothing_meets_still_reports_every_section(tmp_path):
    """An SLO below the service time: theory rules every configuration out, and the report says so (INVALID)."""
    data = plan_scenario({"replicas": [1, 2]}, slos={"a": {"percentile": "p90", "latency_ms": 5}})
    document = plan(scenario_from_dict(data), tmp_path)
    assert document["finalists"] == [] and document["search"]["points_simulated"] == 0
    html = (write_report(tmp_path)[0]).read_text(encoding="utf-8")
    assert all(f'id="{section}"' in html for section in SECTIONS)
    assert "INVALID" in html and "No configuration of the 2 searched meets every SLO" in html


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
