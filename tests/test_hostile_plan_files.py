"""Hostile inputs, the plan's own files: a tampered results table (``points.sqlite``) and a tampered ``plan.json``.

A plan run over a folder whose ``points.sqlite`` is not latsim's table, or holds a result that is not
what a point's result is, stops with exit 2 naming the file (and the point and field); ``latsim
report`` on a ``plan.json`` with a field missing, mistyped, not finite, out of range or pointing at
no configuration stops with exit 2 naming the file and the field. Never a traceback.
"""

from __future__ import annotations

import copy
import json
import math
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator.errors import LatsimError
from simulator.planning.api import load_result
from tests.hostile import assert_clean_error, assert_ok, cli, write_scenario
from tests.test_plan import plan_scenario

FIXTURE = Path(__file__).parent / "hostile" / "plan.json"  # a plan's results as latsim plan writes them (a small M/M/c plan)
TINY_PRECISION = {"tail_events": 10, "screen_tail_events": 10, "replications": 2, "min_requests": 100, "max_requests": 200, "extensions": 0}


def _tiny_plan() -> dict[str, Any]:
    """A plan of one configuration that takes a second or two (13 points, all stored)."""
    data = plan_scenario({"workers": [3]}, target=50.0, what_if_loads=[], max_load_tolerance=0.5)
    data["plan"]["precision"] = TINY_PRECISION
    return data


@pytest.fixture(scope="module")
def planned(tmp_path_factory) -> tuple[Path, Path]:
    """A scenario file and the results folder of its plan, run once for the module."""
    folder = tmp_path_factory.mktemp("planned")
    scenario = write_scenario(folder, _tiny_plan())
    assert_ok(cli("plan", scenario, "--out", folder / "out", "--jobs", "1", "--quiet"))
    return scenario, folder / "out"


def _replan(planned: tuple[Path, Path], tmp_path: Path, tamper) -> Any:
    """The plan run again over a copy of its results folder whose ``points.sqlite`` ``tamper(db)`` changed."""
    scenario, out = planned
    copy_out = tmp_path / "out"
    shutil.copytree(out, copy_out)
    db = sqlite3.connect(copy_out / "points.sqlite")
    tamper(db)
    db.commit()
    db.close()
    return cli("plan", scenario, "--out", copy_out, "--jobs", "1", "--quiet")


def _every_result(change):
    """A tampering that rewrites every stored result as ``change(result)`` (a dict, edited in place or replaced)."""

    def tamper(db: sqlite3.Connection) -> None:
        for key, text in db.execute("SELECT key, result FROM points").fetchall():
            result = json.loads(text)
            changed = change(result)
            result = result if changed is None else changed
            db.execute("UPDATE points SET result = ? WHERE key = ?", (result if isinstance(result, (str, bytes)) else json.dumps(result), key))

    return tamper


def _sql(*statements: str):
    def tamper(db: sqlite3.Connection) -> None:
        for statement in statements:
            db.execute(statement)

    return tamper


def _set_metric(field: str, value: Any):
    def change(result: dict[str, Any]) -> None:
        if result["status"] == "ok":
            result["summary"]["classes"]["a"]["latency_or_drop_ms"]["p90"][field] = value

    return _every_result(change)


def _summary(change):
    def on_stable(result: dict[str, Any]) -> None:
        if result["status"] == "ok":
            change(result["summary"])

    return _every_result(on_stable)


STORES = [  # (id, tampering, words of the error)
    ("another-schema", _sql("DROP TABLE points", "CREATE TABLE points (a, b)"), ["not a latsim results table", "table 'points'"]),
    ("a-view", _sql("ALTER TABLE points RENAME TO kept", "CREATE VIEW points AS SELECT * FROM kept"), ["view 'points'"]),
    ("a-trigger", _sql("CREATE TRIGGER wipe AFTER INSERT ON points BEGIN DELETE FROM points; END"), ["trigger 'wipe'"]),
    ("another-table", _sql("CREATE TABLE extra (x)"), ["table 'extra'"]),
    ("an-index", _sql("CREATE INDEX by_seconds ON points (seconds)"), ["index 'by_seconds'"]),
    ("no-json", _every_result(lambda result: "not json {"), ["its result is not JSON"]),
    ("deep-json", _every_result(lambda result: "[" * 100_000 + "]" * 100_000), ["its result is not JSON", "nested too deeply"]),
    ("a-list", _every_result(lambda result: [1, 2, 3]), ["its result"]),
    ("a-number", _every_result(lambda result: "3"), ["its result"]),
    ("null", _every_result(lambda result: "null"), ["its result"]),
    ("a-blob", _every_result(lambda result: b"\x00\x01"), ["no text"]),
    ("unknown-status", _every_result(lambda result: {**result, "status": "great"}), ["status"]),
    ("no-summary", _every_result(lambda result: {key: value for key, value in result.items() if key != "summary"}), ["summary"]),
    ("summary-a-list", _every_result(lambda result: {**result, "summary": []}), ["summary"]),
    ("nan-estimate", _set_metric("estimate", math.nan), ["classes.a.latency_or_drop_ms.p90", "finite"]),
    ("infinite-ci", _set_metric("ci_high", math.inf), ["classes.a.latency_or_drop_ms.p90"]),
    ("text-estimate", _set_metric("estimate", "23.5"), ["classes.a.latency_or_drop_ms.p90"]),
    ("boolean-estimate", _set_metric("ci_low", True), ["classes.a.latency_or_drop_ms.p90"]),
    ("1e308-estimate", _set_metric("estimate", 1e308), ["classes.a.latency_or_drop_ms.p90"]),
    ("no-class", _summary(lambda summary: summary["classes"].pop("a")), ["classes.a: missing"]),
    ("no-metric", _summary(lambda summary: summary["classes"]["a"].pop("latency_or_drop_ms")), ["latency_or_drop_ms.p90: missing"]),
    ("metric-a-number", _summary(lambda summary: summary["classes"]["a"].update(latency_or_drop_ms=3)), ["latency_or_drop_ms.p90"]),
    ("no-nodes", _summary(lambda summary: summary.pop("nodes")), ["nodes"]),
    ("utilization-text", _summary(lambda summary: [node.update(utilization="high") for node in summary["nodes"].values()]), ["utilization"]),
    ("batch-size-key", _summary(lambda summary: [node.update(batch_sizes={"one": 3}) for node in summary["nodes"].values()]), ["batch_sizes"]),
    ("negative-batches", _summary(lambda summary: [node.update(batch_sizes={"1": -3}) for node in summary["nodes"].values()]), ["batch_sizes"]),
    ("replications-zero", _summary(lambda summary: summary.update(replications=0)), ["replications"]),
    ("notes-a-text", _summary(lambda summary: summary.update(notes="x")), ["notes"]),
    ("seconds-text", _sql("UPDATE points SET seconds = 'slow'"), ["seconds is 'slow'"]),
    ("seconds-negative", _sql("UPDATE points SET seconds = -1"), ["seconds is -1.0"]),
    ("seconds-huge", _sql("UPDATE points SET seconds = 1e300"), ["seconds is 1e+300"]),
]


@pytest.mark.parametrize(("tamper", "needles"), [case[1:] for case in STORES], ids=[case[0] for case in STORES])
def test_a_tampered_results_table_is_refused_naming_it(planned, tmp_path, tamper, needles):
    result = _replan(planned, tmp_path, tamper)
    assert_clean_error(result, str(tmp_path / "out" / "points.sqlite"), *needles)


def test_a_results_table_that_is_no_database_is_refused(planned, tmp_path):
    scenario, _ = planned
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "points.sqlite").write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 20)
    result = cli("plan", scenario, "--out", tmp_path / "out", "--jobs", "1", "--quiet")
    assert_clean_error(result, "points.sqlite", "not a latsim results table")


def test_the_untampered_table_is_reused_in_full(planned, tmp_path):
    """The refusals are the tampering's: the same copy, untouched, resumes with every point reused."""
    result = _replan(planned, tmp_path, lambda db: None)
    assert_ok(result)
    document = json.loads((tmp_path / "out" / "plan.json").read_text())
    assert document["search"]["points_simulated"] == 0 and document["search"]["points_reused"] > 0


def test_a_zero_drop_ratio_slo_is_judged_without_dividing_by_it(tmp_path):
    """``max_drop_ratio: 0`` (no drops at all) is a bound a run can meet: its margin is the share itself."""
    data = _tiny_plan()
    data["plan"]["slos"] = {"a": {"max_drop_ratio": 0.0}}
    result = cli("plan", write_scenario(tmp_path, data), "--out", tmp_path / "out", "--jobs", "1", "--quiet")
    assert_ok(result)
    document = json.loads((tmp_path / "out" / "plan.json").read_text())
    items = document["winner"]["curve"][0]["items"]
    assert items[0]["label"] == "a drops ≤ 0" and items[0]["margin"] == 0.0


# --- plan.json -------------------------------------------------------------------------------------


def _document() -> dict[str, Any]:
    return json.loads(FIXTURE.read_text())


def _write(folder: Path, document: Any) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    text = document if isinstance(document, str) else json.dumps(document)
    (folder / "plan.json").write_text(text)
    return folder


def _edit(path: str, value: Any = None, delete: bool = False):
    """An edit of the fixture at ``path`` (dotted; numbers index lists): set it to ``value``, or delete it."""

    def make() -> dict[str, Any]:
        document = _document()
        *parents, last = [int(part) if part.isdigit() else part for part in path.split(".")]
        node: Any = document
        for part in parents:
            node = node[part]
        if delete:
            del node[last]
        else:
            node[last] = value
        return document

    return make


REQUIRED = ["scenario", "inputs", "search", "configurations", "finalists", "winner", "valid", "invalid_reasons",
            "inconclusive_cheaper", "inputs.targets_per_s", "inputs.slos", "inputs.precision", "inputs.space_size",
            "configurations.0.id", "configurations.0.cost_per_hour", "configurations.0.max_load", "winner.curve",
            "winner.detail.cdf", "winner.max_load.low_per_s", "search.points_simulated", "inputs.slos.0.bound"]
WINNER = "c077a01fc"

DOCUMENTS = [  # (id, make the document, words of the error)
    *((f"missing-{path}", _edit(path, delete=True), [path.split(".")[-1]]) for path in REQUIRED),
    ("targets-text", _edit("inputs.targets_per_s", "150"), ["inputs.targets_per_s"]),
    ("targets-empty", _edit("inputs.targets_per_s", []), ["inputs.targets_per_s"]),
    ("target-zero", _edit("inputs.targets_per_s", [0.0]), ["inputs.targets_per_s[0]"]),
    ("target-as-text", _edit("inputs.targets_per_s", ["150"]), ["inputs.targets_per_s[0]"]),
    ("cost-1e308", _edit("configurations.0.cost_per_hour", 1e308), ["configurations[0].cost_per_hour"]),
    ("cost-text", _edit("configurations.0.cost_per_hour", "1.0"), ["configurations[0].cost_per_hour"]),
    ("cost-negative", _edit("configurations.0.cost_per_hour", -1.0), ["configurations[0].cost_per_hour"]),
    ("valid-text", _edit("valid", "yes"), ["valid"]),
    ("finalists-text", _edit("finalists", WINNER), ["finalists"]),
    ("finalist-unknown", _edit("finalists", ["nope"]), ["finalists[0]: 'nope' is no configuration's id"]),
    ("finalist-twice", _edit("finalists", [WINNER, WINNER]), ["listed twice"]),
    ("finalist-not-confirmed", _edit("finalists", ["c999ac32c"]), ["has no full-length verdict"]),
    ("winner-not-finalist", _edit("winner.id", "c999ac32c"), ["winner.id"]),
    ("winner-without-finalists", _edit("finalists", []), ["winner.id"]),
    ("finalists-without-winner", _edit("winner", None), ["winner: missing"]),
    ("configurations-a-dict", _edit("configurations", {}), ["configurations"]),
    ("confidence-one", _edit("inputs.confidence", 1.0), ["inputs.confidence"]),
    ("slo-bound-text", _edit("inputs.slos.0.bound", "40"), ["inputs.slos[0].bound"]),
    ("requests-true", _edit("winner.curve.0.requests", True), ["winner.curve[0].requests"]),
    ("requests-huge", _edit("winner.curve.0.requests", 10**30), ["winner.curve[0].requests"]),
    ("verdict-unknown", _edit("winner.curve.0.verdict", "fine"), ["winner.curve[0].verdict"]),
    ("estimate-1e308", _edit("winner.curve.0.items.0.estimate", 1e308), ["winner.curve[0].items[0].estimate"]),
    ("cdf-unpaired", _edit("winner.detail.cdf.all.levels", [0.5]), ["winner.detail.cdf.all", "differ in length"]),
    ("cdf-negative", _edit("winner.detail.cdf.all.latency_ms.0", -5.0), ["winner.detail.cdf.all.latency_ms[0]"]),
    ("level-above-one", _edit("winner.detail.cdf.all.levels.0", 2.0), ["winner.detail.cdf.all.levels[0]"]),
    ("series-text", _edit("winner.detail.timeseries.latency_p99_ms", "x"), ["winner.detail.timeseries.latency_p99_ms"]),
    ("batch-size-key", _edit("winner.detail.batch_sizes", {"big": 2}), ["winner.detail.batch_sizes"]),
    ("breakdown-missing", _edit("winner.detail.breakdown_ms.all", {}), ["winner.detail.breakdown_ms.all.compute_ms"]),
    ("max-load-text", _edit("winner.max_load.low_per_s", "283"), ["winner.max_load.low_per_s"]),
    ("space-a-list", _edit("inputs.space", [1, 2]), ["inputs.space"]),
    ("versions-numbers", _edit("inputs.versions", {"latsim": 1}), ["inputs.versions.latsim"]),
    ("name-a-number", _edit("scenario.name", 3), ["scenario.name"]),
    ("nested-deep-field", _edit("scenario.description", [[[[[[["x"]]]]]]]), ["scenario.description"]),
]


@pytest.mark.parametrize(("make", "needles"), [case[1:] for case in DOCUMENTS], ids=[case[0] for case in DOCUMENTS])
def test_report_refuses_a_tampered_plan_json_naming_the_field(tmp_path, make, needles):
    folder = _write(tmp_path / "results", make())
    result = cli("report", folder, "--out", tmp_path / "report")
    assert_clean_error(result, str(folder / "plan.json"), *needles)
    assert not (tmp_path / "report").exists()


TEXTS = [  # (id, the file's text, words of the error)
    ("deep-nesting", '{"format": "latsim-plan", "format_version": 1, "x": ' + "[" * 100_000 + "]" * 100_000 + "}", ["nested too deeply"]),
    ("nan-literal", FIXTURE.read_text().replace('"cost_per_hour": 1.0', '"cost_per_hour": NaN', 1), ["NaN is not a number"]),
    ("infinity-literal", FIXTURE.read_text().replace('"cost_per_hour": 1.0', '"cost_per_hour": Infinity', 1), ["Infinity"]),
    ("a-list", "[]", ["not a latsim plan's results file"]),
    ("truncated", FIXTURE.read_text()[:5000], ["not JSON"]),
]


@pytest.mark.parametrize(("text", "needles"), [case[1:] for case in TEXTS], ids=[case[0] for case in TEXTS])
def test_report_refuses_a_plan_json_that_is_no_sound_json(tmp_path, text, needles):
    folder = _write(tmp_path / "results", text)
    assert_clean_error(cli("report", folder, "--out", tmp_path / "report"), "plan.json", *needles)


def test_the_fixture_itself_reports(tmp_path):
    """The refusals above are the edits': the untouched fixture makes the report."""
    folder = _write(tmp_path / "results", _document())
    assert_ok(cli("report", folder, "--out", tmp_path / "report"))
    assert (tmp_path / "report" / "report.html").stat().st_size > 10_000


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=10),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=6,
)


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path to a value inside ``node`` (keys and list indices)."""
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node[:3]):
            found += _paths(value, (*prefix, index))
    return found


PATHS = _paths(json.loads(FIXTURE.read_text()))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(PATHS), value=JSON_VALUES)
def test_any_value_anywhere_in_plan_json_is_refused_or_reported(tmp_path, path, value):
    """One value of the fixture replaced by any JSON value: ``load_result`` refuses it (a LatsimError) or the report
    context is built from it without an exception (the figures and pages are drawn from the same checked fields)."""
    from simulator.report.capacity import report_context

    document = copy.deepcopy(json.loads(FIXTURE.read_text()))
    node = document
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    folder = _write(tmp_path / f"results-{abs(hash(path)) % 10**8}", document)
    try:
        accepted = load_result(folder)
    except LatsimError as error:
        assert "plan.json" in str(error)
        return
    report_context(accepted)
