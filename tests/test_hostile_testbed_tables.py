"""Hostile inputs, a campaign's tables of requests: ``requests.parquet`` of a run and the profile's ``profile.parquet``.

Every command that analyses a campaign (``latsim fit``, ``testbed calibrate``, ``testbed compare``)
reads them through ``read_campaign``, which checks each column's type and values: integers, text,
booleans where a run writes them, times finite and within bounds, a served request's times in order
and agreeing with its latency parts, and at least one request served. A tampered table is exit 2
naming the file, the column and the row; never an internal error, never a calibration from nonsense.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.hostile import assert_clean_error, assert_ok, cli, latsim
from tests.hostile.campaign import MEASURED, MEASURED_RUN

RUN_TABLE = f"{MEASURED_RUN}/requests.parquet"
PROFILE_TABLE = "profile/profile.parquet"
ROOT = Path(__file__).resolve().parent.parent


def _campaign(directory: Path) -> Path:
    """A copy of the measured campaign whose scenario (and its bundle) resolve from anywhere."""
    campaign = directory / "campaign"
    shutil.copytree(MEASURED, campaign)
    scenario = campaign / "scenario.yaml"
    scenario.write_text(scenario.read_text().replace("../../../profiles", str(ROOT / "profiles")))
    document = json.loads((campaign / "campaign.json").read_text())
    document["scenario"] = str(scenario)
    (campaign / "campaign.json").write_text(json.dumps(document))
    return campaign


def _tamper(campaign: Path, table: str, edit) -> None:
    path = campaign / table
    edit(pd.read_parquet(path)).to_parquet(path, index=False)


def _set(column: str, value, rows: slice = slice(None)):
    def edit(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.copy()
        frame.loc[frame.index[rows], column] = value
        return frame

    return edit


def _as(column: str, kind):
    return lambda frame: frame.assign(**{column: frame[column].astype(kind)})


EDITS = [  # (id, the edit, words of the error)
    ("zero-rows", lambda frame: frame.iloc[:0], ["holds no requests"]),
    ("all-failed", _set("status", 503), ["no request was served"]),
    ("no-worker-times", _set("worker_busy_ms", np.nan), ["no request was served"]),
    ("nan-kernel-start", _set("kernel_start_ms", np.nan, slice(0, 1)), ["row 1", "kernel_start_ms is missing"]),
    ("negative-scheduled", _set("scheduled_ms", -5.0, slice(2, 3)), ["column scheduled_ms, row 3", "-5"]),
    ("all-times-zero", lambda frame: frame.assign(**{c: 0.0 for c in frame.columns if c.endswith("_ms")}), ["latency_ms is 0"]),
    ("time-infinite", _set("reply_received_ms", np.inf, slice(1, 2)), ["column reply_received_ms, row 2", "inf"]),
    ("latency-minus-infinite", _set("latency_ms", -np.inf, slice(0, 1)), ["column latency_ms, row 1"]),
    ("time-1e300", _set("service_ms", 1e300, slice(0, 1)), ["column service_ms", "1e+300"]),
    ("time-1e12", _set("kernel_end_ms", 1e12), ["column kernel_end_ms", "1e+12"]),
    ("out-of-order", _set("dequeue_ms", 0.0, slice(0, 1)), ["row 1", "dequeue_ms is missing or before enqueue_ms"]),
    ("latency-disagrees", lambda frame: frame.assign(latency_ms=frame["latency_ms"] * 1000), ["latency_ms is", "reply_received_ms − scheduled_ms"]),
    ("kernel-zero", lambda frame: frame.assign(kernel_ms=0.0, kernel_end_ms=frame["kernel_start_ms"]), ["kernel_ms is 0"]),
    ("latency-text", _as("latency_ms", str), ["column latency_ms", "not numbers"]),
    ("status-text", _as("status", str), ["column status", "not integers"]),
    ("status-float", _as("status", float), ["column status", "not integers"]),
    ("status-999", _set("status", 999, slice(0, 1)), ["column status holds 999"]),
    ("class-numbers", lambda frame: frame.assign(**{"class": 3}), ["column class holds int64, not text"]),
    ("class-empty", _set("class", None, slice(4, 5)), ["column class is empty in row 5"]),
    ("request-id-float", _as("request_id", float), ["column request_id", "not integers"]),
    ("batch-size-zero", lambda frame: frame.assign(batch_size=pd.array([0] * len(frame), dtype="Int64")), ["batch_size holds 0"]),
    ("batch-size-huge", lambda frame: frame.assign(batch_size=pd.array([2**31 - 1] * len(frame), dtype="Int64")), ["batch_size holds 2147483647"]),
    ("met-deadline-text", _as("met_deadline", str), ["column met_deadline", "not true/false"]),
    ("timestamps-bool", _as("send_ms", bool), ["column send_ms", "not numbers"]),
]


@pytest.mark.parametrize("table", [RUN_TABLE, PROFILE_TABLE], ids=["run", "profile"])
@pytest.mark.parametrize(("edit", "needles"), [case[1:] for case in EDITS], ids=[case[0] for case in EDITS])
def test_fit_refuses_a_tampered_table_of_requests(tmp_path, table, edit, needles):
    campaign = _campaign(tmp_path)
    _tamper(campaign, table, edit)
    result = cli("fit", campaign, "--out", tmp_path / "calibration.yaml", "--quiet", seconds=60)
    assert_clean_error(result, str(campaign / table), *needles)
    assert not (tmp_path / "calibration.yaml").exists()


def test_fit_calibrates_from_the_untampered_campaign(tmp_path):
    """The refusals above are the edits': the same campaign, untouched, gives a calibration."""
    campaign = _campaign(tmp_path)
    assert_ok(cli("fit", campaign, "--out", tmp_path / "calibration.yaml", "--quiet", seconds=60))
    assert (tmp_path / "calibration.yaml").stat().st_size > 0


def test_a_table_with_one_served_request_is_refused_as_too_short(tmp_path):
    """One row is a well-formed table; the calibration then says how many calls it needs."""
    campaign = _campaign(tmp_path)
    _tamper(campaign, RUN_TABLE, lambda frame: frame.iloc[:1])
    assert_clean_error(cli("fit", campaign, "--out", tmp_path / "c.yaml", "--quiet", seconds=60), "needs at least")


@pytest.mark.parametrize("command", ["calibrate", "compare"])
@pytest.mark.parametrize(("edit", "needles"), [EDITS[1][1:], EDITS[5][1:], EDITS[13][1:]], ids=["all-failed", "all-times-zero", "latency-text"])
def test_the_testbed_commands_refuse_a_tampered_table(tmp_path, command, edit, needles):
    pytest.importorskip("aiohttp")  # the testbed commands serve over HTTP
    campaign = _campaign(tmp_path)
    _tamper(campaign, RUN_TABLE, edit)
    out = tmp_path / ("calibration.yaml" if command == "calibrate" else "report")
    assert_clean_error(latsim("testbed", command, campaign, "--out", out, timeout=120), str(campaign / RUN_TABLE), *needles)
    assert not out.exists()
