"""``latsim run SCENARIO --report DIR``: the report of one run, HTML (self-contained) and Markdown, user text escaped."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from simulator.cli import app
from simulator.report.render import markdown_escape
from simulator.report.run import FIGURES, run_report_context

HOSTILE_CLASS = 'fast <script>alert("x")</script> | *bold*'
HOSTILE_SCENARIO = "run <b>bold</b> [link](http://x) `code`"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SCENARIO = {
    "name": HOSTILE_SCENARIO,
    "description": 'served <img src="https://example.com/x.png"> & more',
    "run": {"requests": 3000, "warmup_requests": 500, "replications": 3, "seed": 7},
    "workload": {
        "arrival": {"process": "poisson", "rate_per_s": 150},
        "classes": [
            {"name": HOSTILE_CLASS, "share": 0.5, "deadline_ms": 40, "kind": "firm", "target": 0.9},
            {"name": "lenient", "share": 0.5, "deadline_ms": 1000, "kind": "soft", "target": 0.5},
            {"name": "unjudged", "share": 0.0001, "deadline_ms": 40, "kind": "firm"},
        ],
    },
    "nodes": [{"name": "gpu <node>", "workers": 2, "service": {"distribution": "scipy", "name": "expon", "params": {"scale": 10.0}}}],
}


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> tuple[Path, str]:
    """A run of a scenario whose names are hostile HTML and Markdown, with its report, and the command's output."""
    folder = tmp_path_factory.mktemp("run")
    scenario = folder / "scenario.yaml"
    scenario.write_text(yaml.safe_dump(SCENARIO), encoding="utf-8")
    result = CliRunner().invoke(app, ["run", str(scenario), "--quiet", "--report", str(folder / "report")], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return folder / "report", result.output


def test_both_files_are_written_and_named_in_the_output(report):
    folder, output = report
    assert (folder / "report.html").is_file() and (folder / "report.md").is_file()
    assert f"wrote the report: {folder / 'report.html'} and {folder / 'report.md'}" in output
    assert not [path.name for path in folder.rglob("*") if path.name.startswith(".")]  # no temporary file left behind


def test_the_html_embeds_every_time_series_figure_and_loads_nothing(report):
    html = (report[0] / "report.html").read_text(encoding="utf-8")
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(images) == 4  # throughput, latency, queue length, utilisation (no cache in this scenario)
    assert all(base64.b64decode(image).startswith(PNG_MAGIC) for image in images)
    for name in ("throughput", "latency", "queue_length", "utilization"):
        assert f'id="{name}"' in html
    assert "Content-Security-Policy" in html and not re.search(r'(src|href)="(https?:)?//', html)


def test_the_html_escapes_user_text(report):
    html = (report[0] / "report.html").read_text(encoding="utf-8")
    assert "<script" not in html and "fast &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    assert "<b>bold</b>" not in html and "&lt;b&gt;bold&lt;/b&gt;" in html
    assert "gpu &lt;node&gt;" in html and '<img src="https' not in html


def test_the_markdown_escapes_user_text_and_links_its_plots(report):
    markdown = (report[0] / "report.md").read_text(encoding="utf-8")
    assert markdown.startswith(f"# Run: {markdown_escape(HOSTILE_SCENARIO)}\n")
    assert f"| {markdown_escape(HOSTILE_CLASS)} | firm | 40 |" in markdown  # the class stays one table cell
    prose = re.sub(r"^```.*?^```", "", markdown, flags=re.S | re.M)  # the scenario as written stays verbatim in its code blocks
    assert "<script" not in prose and "<img" not in prose and "<script" in markdown
    for name in ("throughput", "latency", "queue_length", "utilization"):
        assert f"(plots/{name}.png)" in markdown
        assert (report[0] / "plots" / f"{name}.png").read_bytes().startswith(PNG_MAGIC)


def test_every_section_shows_the_run_figures(report):
    html = (report[0] / "report.html").read_text(encoding="utf-8")
    for section in ("verdict", "latency", "realtime", "nodes", "notes", "inputs"):
        assert f'id="{section}"' in html, section
    assert "not judged: give the class a target" in html  # the firm class without a target is named, not left blank
    assert re.search(r"lenient</td>.*?<td class=\"met\">met</td>", html, re.S)
    assert re.search(r"\d+(\.\d+)? % \[\d+(\.\d+)?, \d+(\.\d+)?\]", html)  # a share with its interval: utilisation, deadline met
    assert "latsim run " in html and "--seed 7 --replications 3 --requests 3000" in html


def test_the_verdict_sentence_names_the_worst_verdict():
    entry = {"kind": "soft", "deadline_ms": 10.0}
    slo = {"miss_allowance": 0.05, "misses": 9, "finished": 100, "miss_probability": {"upper_bound": 0.15}}
    summary = {
        "offered_load": 0.5, "replications": 5, "requests_per_replication": 100, "engine": "fast",
        "classes": {"a": {**entry, "slo": {**slo, "verdict": "violated"}}, "b": {**entry, "slo": {**slo, "verdict": "met"}}, "all": {}},
        "nodes": {},
    }
    context = run_report_context(summary, {"name": "s"}, [])
    assert context["overall"] == "violated" and "an SLO is violated: a: violated" in context["sentence"]
    summary["classes"] = {"a": {"kind": "soft"}, "all": {}}
    context = run_report_context(summary, {"name": "s"}, [])
    assert context["overall"] == "none" and "no class has an SLO" in context["sentence"]


def test_a_report_folder_that_is_a_file_is_refused_before_the_run(tmp_path):
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(yaml.safe_dump(SCENARIO), encoding="utf-8")
    (tmp_path / "taken").write_text("a file")
    result = CliRunner().invoke(app, ["run", str(scenario), "--quiet", "--report", str(tmp_path / "taken")])
    assert result.exit_code == 2 and "latency in ms" not in result.output


def test_figures_have_a_title_and_caption_each():
    assert set(FIGURES) == {"throughput", "latency", "queue_length", "utilization", "cache_hit_ratio"}
    assert all(title and caption.endswith(".") for title, caption in FIGURES.values())
