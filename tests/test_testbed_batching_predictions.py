"""A batching campaign's predictions price batches: the run's own calls (prediction b) replay as single-request times
with the run's own batch cost, and the profile's single calls (prediction a, raw or calibrated) with the batch cost of
the scenario's profile — so that ``testbed compare`` runs on a batching campaign instead of refusing it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from simulator.runner.api import run
from simulator.scenario.loader import load_scenario
from simulator.testbed.scenario import measured_scenario, profile_batch_scaling, profile_scenario

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "scenarios" / "testbed-cnn-batching.yaml"
SINGLE_MS, PER_EXTRA_ITEM = 1.0, 0.4


def _run_table(calls: int, seed: int = 0) -> pd.DataFrame:
    """A batching run's requests: batches of 1 to 8 at 3 ms gaps, each taking SINGLE_MS·(1 + k·(b − 1)) × noise."""
    rng = np.random.default_rng(seed)
    rows = []
    for call in range(calls):
        size = int(rng.integers(1, 9))
        service_ms = SINGLE_MS * (1 + PER_EXTRA_ITEM * (size - 1)) * rng.lognormal(0, 0.05)
        start_ms = 3.0 * call
        for item in range(size):
            rows.append({"request_id": len(rows), "class": "default", "status": 200, "batch_id": call, "batch_size": size,
                         "enqueue_ms": start_ms - 0.5 + item * 0.01, "dequeue_ms": start_ms, "service_ms": service_ms,
                         "worker_busy_ms": service_ms + 0.05, "outside_ms": 0.3, "kernel_ms": service_ms})
    return pd.DataFrame(rows)


def test_the_run_prediction_replays_single_request_times_with_the_runs_own_batch_cost(tmp_path):
    scenario = load_scenario(SCENARIO)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    _run_table(3000).to_parquet(run_dir / "requests.parquet")
    predicted = load_scenario(measured_scenario(scenario, run_dir, tmp_path / "b", replications=2))
    service = predicted.nodes[0].service
    assert service.batch_scaling.per_extra_item == pytest.approx(PER_EXTRA_ITEM, rel=0.05)
    replayed = pd.read_csv(tmp_path / "b" / service.file)["service_ms"]
    assert replayed.median() == pytest.approx(SINGLE_MS, rel=0.02)  # each call brought back to one request's time
    assert run(predicted).summary["classes"]["all"]["latency_ms"]["p50"]["estimate"] > 0


def test_the_profile_predictions_price_batches_by_the_profiles_batch_sizes(tmp_path):
    scenario = load_scenario(SCENARIO)
    scaling = profile_batch_scaling(scenario)
    assert scaling is not None and 0 < scaling["per_extra_item"] < 1  # the shipped bundle measured batch sizes 1..8
    profile_dir = tmp_path / "profile"
    profile_dir.mkdir()
    _run_table(500).to_parquet(profile_dir / "profile.parquet")
    calibration = {"outside": {"distribution": "deterministic", "value_ms": 0.3}}
    for given in (None, calibration):
        predicted = load_scenario(profile_scenario(scenario, profile_dir, 300.0, tmp_path / "a", given, requests=2000, replications=2))
        assert predicted.nodes[0].service.batch_scaling.per_extra_item == pytest.approx(scaling["per_extra_item"])
        assert predicted.nodes[0].batching.max_batch_size == 8
        assert run(predicted).summary["offered_load"] > 0


def test_a_node_without_batching_gets_no_batch_cost():
    assert profile_batch_scaling(load_scenario(ROOT / "scenarios" / "testbed-cnn-fifo.yaml")) is None
