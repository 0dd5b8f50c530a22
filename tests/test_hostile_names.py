"""Hostile inputs, names and places: names that would become paths, links out of a campaign or bundle,
outputs that are inputs, and names that reach a terminal or a plot.

A name that becomes part of a file name (``fit --family/--variant``, a bundle's model names,
``profile --name``) is refused unless it is one plain file name (exit 2, the option or field
named) before anything is written; a file a campaign lists that is a symbolic link out of the
campaign is refused; an output that is one of the command's inputs is refused and the input kept;
names print as written (control characters as ``\\x1b``, rich markup literal) and plot as written
(never parsed as mathtext).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from simulator.files import MAX_NAME_BYTES, path_component
from simulator.testbed.campaign_file import read_campaign
from tests.helpers import base_scenario
from tests.hostile import assert_clean_error, assert_ok, cli, latsim, write_scenario
from tests.hostile.bundle import write_pristine
from tests.hostile.campaign import RUN_DIR, complete_campaign
from tests.test_plan import plan_scenario

RAW_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # what a terminal would obey (tab and newline aside)
ESCAPES = "\x1b]0;pwned\x07\x1b[2J\x9b31m\r"  # retitle, clear the screen, CSI as one C1 byte, carriage return
MARKUP = "[bold red]x[/]"
MATH = "$\\frac{$"


def _tree(root: Path) -> set[str]:
    """Every path under ``root`` (links not followed), as text relative to it."""
    return {str(path.relative_to(root)) for path in root.rglob("*")}


@pytest.fixture
def samples(tmp_path) -> Path:
    """A CSV of 200 gamma times in ``<tmp>/data``; the outputs go deeper, so that ``../..`` stays inside ``tmp``."""
    (tmp_path / "data").mkdir()
    (tmp_path / "d1" / "d2" / "d3").mkdir(parents=True)
    path = tmp_path / "data" / "t.csv"
    np.savetxt(path, np.random.default_rng(0).gamma(4.0, 1.0, 200), header="ms", comments="")
    return path


NOT_FILE_NAMES = [  # (id, the name (tmp is the test's folder), words of the error)
    ("parent-parent", lambda tmp: "../../x", ["path separator"]),
    ("inside-then-out", lambda tmp: "x/../../y", ["path separator"]),
    ("absolute", lambda tmp: str(tmp / "abs"), ["path separator"]),
    ("backslash", lambda tmp: "a\\b", ["path separator"]),
    ("dot-dot", lambda tmp: "..", ["names a folder"]),
    ("dot", lambda tmp: ".", ["names a folder"]),
    ("escape", lambda tmp: "a\x1b[2Jb", ["control character"]),
    ("nul", lambda tmp: "a\x00b", ["control character"]),
    ("c1-csi", lambda tmp: "a\x9bb", ["control character"]),
    ("newline", lambda tmp: "a\nb", ["control character"]),
    ("delete", lambda tmp: "a\x7f", ["control character"]),
    ("256-bytes", lambda tmp: "é" * 128, ["256 bytes", "at most 255"]),
    ("a-million-characters", lambda tmp: "n" * 1_000_000, ["1000000 bytes"]),
    ("undecodable", lambda tmp: "a\udcff", ["not valid Unicode"]),
]


@pytest.mark.parametrize("option", ["--family", "--variant"])
@pytest.mark.parametrize(("make", "needles"), [case[1:] for case in NOT_FILE_NAMES], ids=[case[0] for case in NOT_FILE_NAMES])
def test_fit_refuses_a_name_that_is_no_file_name_before_writing_anything(tmp_path, samples, option, make, needles):
    before = _tree(tmp_path)
    plots, out = tmp_path / "d1" / "d2" / "d3" / "plots", tmp_path / "d1" / "fitted.yaml"
    result = cli("fit", samples, "--out", out, "--plots", plots, option, make(tmp_path), "--quiet")
    assert_clean_error(result, option, *needles)
    assert _tree(tmp_path) == before


def test_fit_refuses_plot_names_longer_than_a_file_name_before_the_work(tmp_path, samples):
    """Each name fits, but family, variant and the plot's kind together do not: refused before fitting, nothing written."""
    before = _tree(tmp_path)
    name = "f" * 200
    result = cli("fit", samples, "--out", tmp_path / "f.yaml", "--plots", tmp_path / "plots", "--family", name, "--variant", name)
    assert_clean_error(result, "a plot's file name", "at most 255")
    assert _tree(tmp_path) == before


def test_fit_accepts_a_long_plain_name_without_plots(tmp_path, samples):
    result = cli("fit", samples, "--out", tmp_path / "f.yaml", "--family", "f" * MAX_NAME_BYTES, "--quiet")
    assert_ok(result)
    assert yaml.safe_load((tmp_path / "f.yaml").read_text())["cells"][0]["family"] == "f" * MAX_NAME_BYTES


def test_fit_refuses_a_samples_file_whose_name_cannot_be_the_default_family(tmp_path, samples):
    hostile = samples.with_name("t\x1b[2J.csv")
    samples.rename(hostile)
    assert_clean_error(cli("fit", hostile, "--out", tmp_path / "f.yaml"), "the samples file's name", "control character")


@pytest.mark.parametrize(("field", "name"), [
    ("family", "../../x"), ("family", "/tmp/latsim-x"), ("variant", ".."), ("device", "a\x1b]0;t\x07"), ("variant", "é" * 200),
])
def test_fit_refuses_a_bundle_whose_model_names_are_no_file_names(tmp_path, field, name):
    bundle = write_pristine(tmp_path / "bundle")
    metadata = json.loads((bundle / "metadata.json").read_text())
    metadata["models"][0][field] = name
    (bundle / "metadata.json").write_text(json.dumps(metadata))
    before = _tree(tmp_path)
    result = cli("fit", bundle, "--out", tmp_path / "f.yaml", "--plots", tmp_path / "plots", "--quiet")
    assert_clean_error(result, f"models[0].{field}")
    assert _tree(tmp_path) == before


def test_profile_refuses_a_bundle_name_that_is_no_file_name_before_profiling(tmp_path):
    before = _tree(tmp_path)
    result = cli("profile", "--out", tmp_path / "profiles", "--name", "../../../x", "--quick")
    assert_clean_error(result, "--name", "path separator")
    assert _tree(tmp_path) == before


def test_path_component_keeps_plain_names_and_names_what_it_refuses():
    for name in ("mlp", "fp32", "résumé", "a b", "x" * MAX_NAME_BYTES, "..a", ".hidden", "a.b"):
        assert path_component(name, "--family") == name
    with pytest.raises(Exception, match=r"--variant 'a/b': holds a path separator"):
        path_component("a/b", "--variant")
    with pytest.raises(Exception, match=r"--family: must be text, not int"):
        path_component(3, "--family")  # type: ignore[arg-type]


# --- links out of a campaign -------------------------------------------------------------------------------


def _link_out(campaign: Path, relative: str) -> None:
    """Move ``relative`` (a file or folder of the campaign) to a folder beside the campaign, and link to it."""
    elsewhere = campaign.parent / "elsewhere" / relative
    elsewhere.parent.mkdir(parents=True, exist_ok=True)
    (campaign / relative).rename(elsewhere)
    (campaign / relative).symlink_to(elsewhere, target_is_directory=elsewhere.is_dir())


LINKED = ["campaign.json", "profile", "profile/profile.parquet", "level-0.50", RUN_DIR, f"{RUN_DIR}/requests.parquet",
          f"{RUN_DIR}/run.json"]


def _testbed(*args: object):
    """A testbed command as a subprocess: their errors are reported by ``latsim``'s main, not by the command."""
    pytest.importorskip("aiohttp")  # the testbed commands serve over HTTP
    return latsim("testbed", *args, timeout=60)


@pytest.mark.parametrize("linked", LINKED)
def test_a_campaign_file_linked_from_outside_is_refused_by_fit(tmp_path, linked):
    campaign = complete_campaign(tmp_path / "campaign")
    _link_out(campaign, linked)
    before = _tree(tmp_path)
    assert_clean_error(cli("fit", campaign, "--out", tmp_path / "calibration.yaml"), "lies outside", str(campaign))
    assert _tree(tmp_path) == before


@pytest.mark.parametrize(("command", "linked"), [
    *(("calibrate", linked) for linked in LINKED), ("compare", "campaign.json"), ("compare", RUN_DIR), ("compare", "profile"),
])
def test_a_campaign_file_linked_from_outside_is_refused_by_the_testbed(tmp_path, command, linked):
    campaign = complete_campaign(tmp_path / "campaign")
    _link_out(campaign, linked)
    before = _tree(tmp_path)
    out = tmp_path / ("calibration.yaml" if command == "calibrate" else "report")
    assert_clean_error(_testbed(command, campaign, "--out", out), "lies outside", str(campaign))
    assert _tree(tmp_path) == before


def test_a_complete_campaign_and_a_link_within_it_are_read(tmp_path):
    """The refusals above are the links': the same campaign reads, also with a link that stays inside it."""
    campaign = complete_campaign(tmp_path / "campaign")
    assert read_campaign(campaign)["runs"][0]["dir"] == RUN_DIR
    (campaign / "kept").mkdir()
    (campaign / RUN_DIR / "run.json").rename(campaign / "kept" / "run.json")
    (campaign / RUN_DIR / "run.json").symlink_to(campaign / "kept" / "run.json")
    assert read_campaign(campaign)["runs"][0]["valid"]


def test_compare_refuses_a_predictions_folder_linked_outside_before_writing(tmp_path):
    campaign = complete_campaign(tmp_path / "campaign")
    document = json.loads((campaign / "campaign.json").read_text())
    document["scenario"] = str(write_scenario(tmp_path, base_scenario()))
    (campaign / "campaign.json").write_text(json.dumps(document))
    (tmp_path / "elsewhere").mkdir()
    (campaign / "predictions").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    assert_clean_error(_testbed("compare", campaign, "--out", tmp_path / "report"), "a folder of predictions lies outside")
    assert not any((tmp_path / "elsewhere").iterdir())


# --- outputs that are inputs --------------------------------------------------------------------------------


def _hard_link(path: Path) -> Path:
    os.link(path, path.with_name("hard.csv"))
    return path.with_name("hard.csv")


def _soft_link(path: Path) -> Path:
    path.with_name("soft.csv").symlink_to(path)
    return path.with_name("soft.csv")


@pytest.mark.parametrize("out", [lambda samples: samples, _hard_link, _soft_link, lambda samples: samples.parent / "." / "t.csv"],
                         ids=["the-file", "a-hard-link", "a-symbolic-link", "another-spelling"])
def test_fit_refuses_to_write_over_its_samples(samples, out):
    content = samples.read_bytes()
    assert_clean_error(cli("fit", samples, "--out", out(samples)), "--out", "is the input")
    assert samples.read_bytes() == content


@pytest.mark.parametrize("name", ["metadata.json", "samples.parquet"])
def test_fit_refuses_to_write_over_its_bundle(tmp_path, name):
    bundle = write_pristine(tmp_path / "bundle")
    content = (bundle / name).read_bytes()
    assert_clean_error(cli("fit", bundle, "--out", bundle / name), "--out", "is the input")
    assert (bundle / name).read_bytes() == content


@pytest.mark.parametrize("name", ["campaign.json", f"{RUN_DIR}/run.json", "profile/profile.parquet"])
def test_calibration_refuses_to_write_over_its_campaign(tmp_path, name):
    campaign = complete_campaign(tmp_path / "campaign")
    content = (campaign / name).read_bytes()
    assert_clean_error(cli("fit", campaign, "--out", campaign / name), "--out", "is the input")
    assert_clean_error(_testbed("calibrate", campaign, "--out", campaign / name), "--out", "is the input")
    assert (campaign / name).read_bytes() == content


def test_run_refuses_to_write_over_its_scenario(tmp_path):
    scenario = write_scenario(tmp_path, base_scenario())
    content = scenario.read_bytes()
    assert_clean_error(cli("run", scenario, "--json", scenario, "--quiet"), "--json", "is the input")
    inside = write_scenario(tmp_path, base_scenario(), name="summary.json")
    assert_clean_error(cli("run", inside, "--out", tmp_path, "--quiet"), "--out", "is the input")
    assert scenario.read_bytes() == content and inside.exists()


def test_plan_refuses_to_write_over_its_scenario(tmp_path):
    scenario = write_scenario(tmp_path, plan_scenario({"workers": [1, 2]}), name="plan.json")
    content = scenario.read_bytes()
    assert_clean_error(cli("plan", scenario, "--out", tmp_path, "--quiet"), "--out", "is the input")
    assert scenario.read_bytes() == content


# --- names on a terminal and in plots ------------------------------------------------------------------------


def _hostile_names(data: dict) -> dict:
    data["name"] = f"s {ESCAPES} {MARKUP} {MATH}"
    data["workload"]["classes"][0]["name"] = f"c{ESCAPES} {MARKUP} {MATH}"
    data["nodes"][0]["name"] = f"n{ESCAPES} {MARKUP} $x^{{$"
    return data


def assert_shown_as_written(text: str, markup: str = MARKUP) -> None:
    """No control character a terminal would obey; each shown as an escape; markup printed, not applied."""
    assert not RAW_CONTROL.search(text), repr(RAW_CONTROL.search(text))
    assert "\\x1b]0;pwned\\x07\\x1b[2J\\x9b31m\\x0d" in text
    assert markup in text


@pytest.fixture
def hostile_scenario(tmp_path) -> Path:
    data = _hostile_names(base_scenario())
    data["run"].update(requests=300, replications=2)
    return write_scenario(tmp_path, data)


def test_run_prints_names_as_written_and_plots_them(tmp_path, hostile_scenario):
    result = cli("run", hostile_scenario, "--plots", tmp_path / "plots", "--out", tmp_path / "out")
    assert_ok(result)
    assert_shown_as_written(result.stdout + result.stderr)
    assert sorted(path.name for path in (tmp_path / "plots").iterdir()) == [
        "latency.png", "queue_length.png", "throughput.png", "utilization.png"]


@pytest.mark.parametrize("command", [["validate"], ["analyze", "--no-simulate"], ["analyze", "--requests", "300", "--replications", "2"]])
def test_validate_and_analyze_print_names_as_written(hostile_scenario, command):
    result = cli(*command, hostile_scenario)
    assert_ok(result)
    assert_shown_as_written(result.stdout + result.stderr)


def test_an_error_quoting_a_name_prints_it_as_written(tmp_path):
    data = base_scenario()
    data["workload"]["arrival"] = {"process": "trace", "file": f"gone{ESCAPES} {MARKUP}.csv"}
    result = cli("validate", write_scenario(tmp_path, data))
    assert_shown_as_written(assert_clean_error(result))


def test_fit_prints_its_source_as_written(tmp_path, samples):
    hostile = samples.with_name(f"t{ESCAPES} [bold red]x.csv")  # a file name holds no [/]
    samples.rename(hostile)
    result = cli("fit", hostile, "--out", tmp_path / "f.yaml", "--family", "t", "--quiet")
    assert_ok(result)
    assert_shown_as_written(result.stdout + result.stderr, "[bold red]x")


def test_plan_and_its_report_show_names_as_written(tmp_path):
    data = _hostile_names(plan_scenario({"replicas": [3], "workers": [1, 2]}, max_load_tolerance=0.1))
    data["plan"]["slos"] = {data["workload"]["classes"][0]["name"]: {"percentile": "p90", "latency_ms": 40}}
    result = cli("plan", write_scenario(tmp_path, data), "--out", tmp_path / "out", "--report", tmp_path / "report",
                 "--jobs", "1", "--quiet", seconds=120)
    assert result.exit_code in (0, 1), result.stderr
    assert_shown_as_written(result.stdout + result.stderr)
    assert len(list((tmp_path / "report" / "plots").iterdir())) == 8
    report = cli("report", tmp_path / "out", "--out", tmp_path / "again")
    assert_ok(report)
    assert not RAW_CONTROL.search(report.stdout + report.stderr)


def test_a_figure_shows_mathtext_in_names_literally():
    from simulator.report.render import png

    def draw(axes):
        axes.barh([MATH, f"b{ESCAPES}"], [1.0, 2.0], label=MATH)
        axes.set_yscale("linear")

    assert png(MATH, MATH, f"{MATH} {ESCAPES}", draw).startswith(b"\x89PNG")
