"""Hostile inputs, data files: the CSV/parquet columns of empirical service times, traces and key traces.

``read_sample_column`` answers every file with finite floats or a ScenarioError naming the field,
the file and (where it applies) the column and first bad row; scenarios that name such files get
exit 2 from ``validate``. Whether a finite value makes sense for its use is the caller's check
(``require_within``); the cases where the lead's callers still accept nonsense are xfail.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from simulator import ScenarioError
from simulator.formats import samples
from simulator.formats.samples import read_sample_column, require_within
from tests.helpers import base_scenario
from tests.hostile import assert_clean_error, assert_ok, cli, latsim, validate, write_scenario
from tests.hostile.campaign import campaign_folder, record_columns, requests_tables

RANDOM_BYTES = random.Random(3).randbytes(2048)


def _text(content: str | bytes, name: str = "data.csv") -> Callable[[Path], Path]:
    def make(directory: Path) -> Path:
        path = directory / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
        return path

    return make


def _parquet(frame: pd.DataFrame, name: str = "data.parquet") -> Callable[[Path], Path]:
    def make(directory: Path) -> Path:
        frame.to_parquet(directory / name, index=False)
        return directory / name

    return make


def _truncated_parquet(directory: Path) -> Path:
    _parquet(pd.DataFrame({"x": np.arange(1000.0)}))(directory)
    path = directory / "data.parquet"
    path.write_bytes(path.read_bytes()[:300])
    return path


def _fifo(directory: Path) -> Path:
    os.mkfifo(directory / "data.csv")
    return directory / "data.csv"


# (id, make the file, column, words the error must contain, or the values read)
CASES = [
    ("csv-ok", _text("x\n1\n2.5\n"), None, [1.0, 2.5]),
    ("csv-named-column", _text("a,b\n1,2\n3,4\n"), "b", [2.0, 4.0]),
    ("csv-quoted-numbers", _text('x\n"1.5"\n"2"\n'), None, [1.5, 2.0]),
    ("csv-crlf", _text("x\r\n1\r\n2\r\n"), None, [1.0, 2.0]),
    ("csv-utf8-bom", _text(b"\xef\xbb\xbfx\n1\n"), None, [1.0]),
    ("csv-huge-integer", _text("x\n123456789012345678901234567890\n"), None, [1.2345678901234568e29]),
    ("csv-no-header", _text("5.0\n7.5\n"), None, ["header line"]),
    ("csv-empty", _text(""), None, ["is empty"]),
    ("csv-whitespace", _text("\n   \n\n"), None, ["is empty"]),
    ("csv-header-only", _text("x\n"), None, ["holds no values"]),
    ("csv-random-bytes", _text(RANDOM_BYTES), None, ["data.csv"]),
    ("csv-nul-bytes", _text(b"x\n1\n\0\0\n"), None, ["NUL"]),
    ("csv-utf-16", _text("x\n1\n".encode("utf-16")), None, ["UTF-16"]),
    ("csv-latin-1", _text(b"x\ncaf\xe9\n"), None, ["not UTF-8"]),
    ("csv-words", _text("x\n1\nabc\n3\n"), None, ["row 2 holds abc", "finite number"]),
    ("csv-empty-cell", _text("x,y\n1,2\n,3\n"), "x", ["row 2"]),
    ("csv-nan", _text("x\n1\nnan\n"), None, ["row 2"]),
    ("csv-inf", _text("x\ninf\n"), None, ["row 1"]),
    ("csv-minus-inf", _text("x\n1\n-inf\n"), None, ["row 2"]),
    ("csv-1e400", _text("x\n1e400\n"), None, ["row 1"]),
    ("csv-hex", _text("x\n0x10\n"), None, ["row 1"]),
    ("csv-booleans", _text("x\nTrue\nFalse\n"), None, ["true/false"]),
    ("csv-two-columns", _text("a,b\n1,2\n"), None, ["name one with 'column'"]),
    ("csv-missing-column", _text("a\n1\n"), "latency", ["has no column 'latency'"]),
    ("csv-ragged", _text("x\n1\n2,3,4\n"), None, ["cannot read", "as CSV"]),
    ("csv-unclosed-quote", _text('x\n"1\n2\n'), None, ["cannot read", "as CSV"]),
    ("csv-10000-columns", _text(",".join(f"c{i}" for i in range(10_000)) + "\n" + ",".join("1" * 10_000) + "\n"), None, ["and 9980 more"]),
    ("csv-megabyte-value", _text("x\n" + "9" * 1000 + "z" * 1_000_000 + "\n"), None, ["row 1"]),
    ("parquet-ok", _parquet(pd.DataFrame({"x": [1.0, 2.0]})), None, [1.0, 2.0]),
    ("parquet-integers", _parquet(pd.DataFrame({"k": np.arange(3, dtype=np.int64)})), "k", [0.0, 1.0, 2.0]),
    ("parquet-random-bytes", _text(RANDOM_BYTES, "data.parquet"), None, ["cannot read", "as parquet"]),
    ("parquet-csv-inside", _text("x\n1\n", "data.parquet"), None, ["cannot read", "as parquet"]),
    ("parquet-truncated", _truncated_parquet, None, ["cannot read", "as parquet"]),
    ("parquet-no-rows", _parquet(pd.DataFrame({"x": pd.Series([], dtype=float)})), None, ["holds no values"]),
    ("parquet-words", _parquet(pd.DataFrame({"x": ["fast", "slow"]})), None, ["row 1 holds fast"]),
    ("parquet-booleans", _parquet(pd.DataFrame({"x": [True, False]})), None, ["true/false"]),
    ("parquet-datetimes", _parquet(pd.DataFrame({"x": pd.to_datetime(["2024-01-01", "2024-01-02"])})), None, ["datetime64", "not numbers"]),
    ("parquet-nulls", _parquet(pd.DataFrame({"x": pd.array([1, None, 3], dtype="Int64")})), None, ["row 2"]),
    ("parquet-nan", _parquet(pd.DataFrame({"x": [1.0, np.nan]})), None, ["row 2"]),
    ("parquet-two-columns", _parquet(pd.DataFrame({"a": [1.0], "b": [2.0]})), None, ["name one with 'column'"]),
    ("parquet-missing-column", _parquet(pd.DataFrame({"a": [1.0]})), "b", ["has no column 'b'"]),
    ("missing-file", lambda directory: directory / "nowhere.csv", None, ["does not exist"]),
    ("directory", lambda directory: directory, None, ["is a folder"]),
    ("fifo", _fifo, None, ["not a regular file"]),
    ("dev-zero", lambda directory: Path("/dev/zero"), None, ["not a regular file"]),
]


@pytest.mark.parametrize(("make", "column", "expected"), [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_sample_file(tmp_path, make, column, expected):
    path = make(tmp_path)
    if all(isinstance(value, float) for value in expected):
        np.testing.assert_array_equal(read_sample_column(path, column, "service.empirical"), expected)
        return
    with pytest.raises(ScenarioError) as caught:
        read_sample_column(path, column, "service.empirical")
    message = str(caught.value)
    assert message.startswith("service.empirical: ") and str(path) in message and len(message) < 1_000, message
    for needle in expected:
        assert needle in message, message


@pytest.mark.parametrize("make", [_text("x\n" + "1\n" * 6), _parquet(pd.DataFrame({"x": np.ones(6)}))], ids=["csv", "parquet"])
def test_row_limit(tmp_path, monkeypatch, make):
    monkeypatch.setattr(samples, "MAX_ROWS", 5)
    with pytest.raises(ScenarioError, match="more than the limit of 5 rows"):
        read_sample_column(make(tmp_path), None, "arrival.trace")


def test_size_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(samples, "MAX_FILE_BYTES", 100)
    with pytest.raises(ScenarioError, match="the limit for this kind of file is 100 bytes"):
        read_sample_column(_text("x\n" + "1\n" * 100)(tmp_path), None, "arrival.trace")


@pytest.mark.parametrize(
    ("values", "column", "message"),
    [
        ([1.0, -2.0, 3.0], "ms", r"column 'ms': row 2 holds -2; values here must lie in \[0, 100\] \(1 of 3 do not\)"),
        ([1.0, 2.0, 1e308], None, r"its only column: row 3 holds 1e\+308"),
        ([0.0, 100.0], "ms", None),
    ],
    ids=["below", "above", "within"],
)
def test_require_within(values, column, message):
    array = np.array(values)
    if message is None:
        assert require_within(array, 0, 100, Path("t.csv"), column, "service.empirical") is array
    else:
        with pytest.raises(ScenarioError, match=r"service\.empirical: t\.csv, " + message):
            require_within(array, 0, 100, Path("t.csv"), column, "service.empirical")


# --- through scenarios: the field that names the file is in the message ---------------------------------------------


def _empirical(file: str) -> dict:
    data = base_scenario()
    data["nodes"][0]["service"] = {"distribution": "empirical", "file": file}
    return data


def _trace(file: str, **extra: object) -> dict:
    data = base_scenario()
    data["workload"]["arrival"] = {"process": "trace", "file": file, **extra}
    return data


def _key_trace(file: str) -> dict:
    data = base_scenario()
    data["workload"]["keys"] = {"popularity": "trace", "file": file}
    return data


def _lead(what: str) -> pytest.MarkDecorator:
    return pytest.mark.xfail(reason=f"lead: {what}", strict=True)


SCENARIO_CASES = [
    pytest.param(_empirical, RANDOM_BYTES, ["service.empirical", "not CSV text"], id="empirical-binary"),
    pytest.param(_empirical, "ms\n1\n2\nslow\n", ["service.empirical", "row 3 holds slow"], id="empirical-words"),
    pytest.param(_trace, "t\n1\n2\n1e400\n", ["arrival.trace", "row 3"], id="trace-overflow"),
    pytest.param(_key_trace, "k\n\n", ["keys.trace", "holds no values"], id="key-trace-empty"),
    pytest.param(_key_trace, "k\n1.5\n2\n", ["keys.trace", "integer keys"], id="key-trace-fractions"),
    pytest.param(_empirical, "ms\n0\n0\n0\n", ["service.empirical", "only zeros"], id="empirical-all-zero"),
    pytest.param(_empirical, "ms\n1e308\n1e308\n", ["service.empirical", "row 1 holds 1e+308"], id="empirical-1e308"),
    pytest.param(_empirical, "ms\n1e-310\n2e-310\n", ["service.empirical", "row 1 holds 1e-310"], id="empirical-subnormal"),
    pytest.param(_empirical, "ms\n1\n2\n-3\n", ["service.empirical", "row 3 holds -3"], id="empirical-negative"),
    pytest.param(_trace, "t\n0\n1e308\n", ["arrival.trace"], id="trace-1e308"),
    pytest.param(_trace, "t\n5\n", ["arrival.trace"], id="trace-one-timestamp"),
    pytest.param(_trace, "t\n5\n5\n5\n", ["arrival.trace"], id="trace-all-equal"),
    pytest.param(_trace, "t\n" + "".join(f"{i}\n" for i in range(100)), ["arrival.trace"], id="trace-shorter-than-warm-up"),
]


@pytest.mark.parametrize(("scenario", "content", "needles"), SCENARIO_CASES)
def test_data_file_in_a_scenario(tmp_path, scenario, content, needles):
    (tmp_path / "data.csv").write_bytes(content if isinstance(content, bytes) else content.encode())
    path = write_scenario(tmp_path, scenario("data.csv"))
    assert_clean_error(validate(path, seconds=10), "data.csv", *needles)


def test_trace_time_scale_1e308(tmp_path):
    (tmp_path / "data.csv").write_text("t\n0\n1\n2\n3\n")
    path = write_scenario(tmp_path, _trace("data.csv", time_scale=1e308))
    assert_clean_error(validate(path, seconds=10), "time_scale")


@pytest.mark.parametrize("key", ["4e15", "2000000000"], ids=["key-4e15", "key-2e9"])
def test_key_trace_with_one_huge_key(tmp_path, key):
    (tmp_path / "data.csv").write_text(f"k\n1\n{key}\n")
    path = write_scenario(tmp_path, _key_trace("data.csv"))
    assert_clean_error(latsim("validate", path, timeout=60), "keys.trace")


_OVERHEAD = "overhead: {occupancy: [1], mean_ms: [0.1]}\n"
_SPEED = "speed: {factors: [1.0], transition: [[1.0]]}"
_BOMB = "".join(f"{name}: &{name} [{', '.join([f'*{before}'] * 9) if before else '1'}]\n"
                for before, name in zip(["", "a", "b", "c", "d", "e"], "abcdef"))


@pytest.mark.parametrize(("content", "needles"), [
    pytest.param(_OVERHEAD + "levels: [{}]\n", ["levels.0.speed", "Field required"], id="calibration-empty-level"),
    pytest.param(_OVERHEAD + "levels: x\n", ["levels"], id="calibration-levels-text"),
    pytest.param(_OVERHEAD + "levels: []\n", ["levels"], id="calibration-no-level"),
    pytest.param(_OVERHEAD + f"profile_drift: [-1]\nlevels: [{{level: 0.5, rate_per_s: 10, {_SPEED}, outside: {{}}}}]\n",
                 ["profile_drift.0"], id="calibration-negative-drift"),
    pytest.param(_OVERHEAD + "levels: [{level: 0.5, rate_per_s: 10, speed: {factors: [.nan], transition: [[1]]}, outside: {}}]\n",
                 ["levels.0.speed.factors.0"], id="calibration-nan-factor"),
    pytest.param(_OVERHEAD + f"levels: [{{level: 0.5, rate_per_s: 10, {_SPEED}, outside: {{}}, extra: 1}}]\n",
                 ["levels.0.extra"], id="calibration-unknown-key"),
    pytest.param(_BOMB + "overhead: *f\nlevels: *f\n", ["values (with YAML aliases expanded)", "a calibration names its data files"],
                 id="calibration-alias-bomb"),
    pytest.param(RANDOM_BYTES, ["a calibration is UTF-8 YAML"], id="calibration-binary"),
    pytest.param("overhead: {occupancy: [1], mean_ms: [0.1]}\noverhead: {}\n", ["duplicate key"], id="calibration-duplicate-key"),
])
def test_calibration_file(tmp_path, content, needles):
    """``testbed compare --calibration``: a calibration file is checked like a scenario before any campaign is read."""
    pytest.importorskip("aiohttp")  # the testbed commands serve over HTTP
    path = tmp_path / "calibration.yaml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    result = latsim("testbed", "compare", tmp_path / "campaign", "--calibration", path, timeout=60)
    assert_clean_error(result, "calibration.yaml", *needles)


@pytest.mark.parametrize(("content", "needles"), [
    pytest.param("{}", ["testbed: Field required", "runs: Field required"], id="campaign-empty"),
    pytest.param("[]", ["valid dictionary"], id="campaign-list"),
    pytest.param("garbage", ["not a campaign file"], id="campaign-not-json"),
    pytest.param('{"runs": [{"dir": "../../etc", "level": 0.5}]}', ["runs.0.dir", "without .."], id="campaign-run-outside"),
    pytest.param("[" * 100_000 + "]" * 100_000, ["not a campaign file"], id="campaign-deep-nesting"),
])
@pytest.mark.parametrize("command", ["compare", "calibrate"])
def test_campaign_file(tmp_path, content, needles, command):
    """A campaign folder whose ``campaign.json`` is broken gets a clean error naming the file and field, never a crash."""
    pytest.importorskip("aiohttp")  # the testbed commands serve over HTTP
    (tmp_path / "campaign.json").write_text(content)
    extra = ["--out", tmp_path / "calibration.yaml"] if command == "calibrate" else []
    assert_clean_error(latsim("testbed", command, tmp_path, *extra, timeout=60), "campaign.json", *needles)


@pytest.mark.parametrize(("tamper", "needles"), [
    pytest.param(lambda d: None, ["profile.parquet", "missing"], id="campaign-no-files"),
    pytest.param(lambda d: requests_tables(d, ["request_id", "status"]), ["profile.parquet", "lacks the columns"],
                 id="campaign-columns-missing"),
    pytest.param(lambda d: ((d / "profile").mkdir(), (d / "profile" / "profile.parquet").write_bytes(RANDOM_BYTES)),
                 ["profile.parquet", "not a table of requests"], id="campaign-parquet-garbage"),
    pytest.param(lambda d: (requests_tables(d, list(record_columns())),
                            (d / "level-0.50" / "repeat-0" / "run.json").write_text('{"load": 3}')),
                 ["run.json", "not a run summary"], id="campaign-run-summary-broken"),
    pytest.param(lambda d: requests_tables(d, [*record_columns(), "snapshot"]),
                 ["profile.parquet", "snapshot", "integer"], id="campaign-profile-snapshot-not-integer"),
])
@pytest.mark.parametrize("command", ["compare", "calibrate"])
def test_campaign_folder(tmp_path, tamper, needles, command):
    """A campaign folder whose runs' files are missing or broken gets a clean error naming the file, never a crash."""
    pytest.importorskip("aiohttp")  # the testbed commands serve over HTTP
    tamper(campaign_folder(tmp_path))
    extra = ["--out", tmp_path / "calibration.yaml"] if command == "calibrate" else []
    assert_clean_error(latsim("testbed", command, tmp_path, *extra, timeout=60), *needles)


@pytest.mark.parametrize("where", [0, 50, 99], ids=["first", "middle", "last"])
def test_fit_on_samples_all_equal_but_one(tmp_path, where):
    """A degenerate ordered run fits (a chain only where it is finite), without numpy warnings or an internal error."""
    times = np.full(100, 5.0)
    times[where] = 7.0
    path = tmp_path / "t.csv"
    np.savetxt(path, times, header="ms", comments="")
    result = cli("fit", path, "--out", tmp_path / "f.yaml", "--quiet")
    assert_ok(result)
    assert "Warning" not in result.stderr
    fitted = (tmp_path / "f.yaml").read_text()
    assert ".nan" not in fitted and ".inf" not in fitted
