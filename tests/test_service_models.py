"""The service models beyond the basic ones: mixture, hyperexponential, phase-type, shift/scale, processes, expressions.

Tolerances: a sample mean within 4 standard errors (computed from the model's own second moment);
queueing figures at confidence 0.999 must contain Pollaczek–Khinchine's exact value.
"""

from __future__ import annotations

import math
from itertools import islice
from pathlib import Path

import numpy as np
import pytest

from simulator import run, scenario_from_dict
from simulator.analysis import analyze
from simulator.distributions import HyperExponential, PhaseType
from simulator.errors import ScenarioError
from simulator.random_streams import DRAW_BLOCK_SIZE, draws
from simulator.registry import SERVICE_MODELS
from simulator.service.base import ServiceTimeModel, build_service_model
from tests.helpers import base_scenario

Z = 4.0
H2 = {"distribution": "hyperexponential", "weights": [0.8, 0.2], "means_ms": [5.0, 30.0]}
PH = {"distribution": "phase_type", "alpha": [0.6, 0.4, 0.0], "T": [[-0.5, 0.2, 0.1], [0.0, -0.25, 0.25], [0.0, 0.0, -0.4]]}


def model(settings: dict, base_dir: Path = Path(".")) -> ServiceTimeModel:
    return build_service_model(SERVICE_MODELS.validate(settings), base_dir)


def assert_mean_fits(built: ServiceTimeModel, size: int = 200_000, batch_size: int = 1) -> np.ndarray:
    times = built.draw_block(np.random.default_rng(1), size, batch_size)
    mean, second = built.mean_ms(batch_size), built.second_moment_ms2(batch_size)
    assert abs(times.mean() - mean) <= Z * math.sqrt((second - mean**2) / size)
    return times


def csv(tmp_path: Path, text: str, name: str = "times.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_hyperexponential_and_phase_type_have_their_laws_moments():
    h2 = model(H2)
    law = HyperExponential([0.8, 0.2], [1 / 5.0, 1 / 30.0])
    for k, got in ((1, h2.mean_ms()), (2, h2.second_moment_ms2()), (3, h2.third_moment_ms3())):
        assert got == pytest.approx(law.moment(k))
    ph = model(PH)
    ph_law = PhaseType(PH["alpha"], PH["T"])
    assert ph.mean_ms() == pytest.approx(ph_law.mean()) and ph.third_moment_ms3() == pytest.approx(ph_law.moment(3))
    assert_mean_fits(h2)
    assert_mean_fits(ph)


def test_a_mixture_of_any_models_is_recursive_and_has_the_weighted_moments():
    inner = {"distribution": "mixture", "weights": [1, 3], "components": [{"distribution": "deterministic", "value_ms": 2.0}, H2]}
    mixture = model({"distribution": "mixture", "weights": [2, 2], "components": [inner, {"distribution": "deterministic", "value_ms": 10.0}]})
    assert mixture.mean_ms() == pytest.approx(0.5 * (0.25 * 2 + 0.75 * 10.0) + 0.5 * 10)
    expected_second = 0.5 * (0.25 * 4 + 0.75 * HyperExponential([0.8, 0.2], [0.2, 1 / 30]).moment(2)) + 0.5 * 100
    assert mixture.second_moment_ms2() == pytest.approx(expected_second)
    times = assert_mean_fits(mixture)
    assert np.mean(times == 10.0) == pytest.approx(0.5, abs=0.01)
    with pytest.raises(ScenarioError, match="cannot serve batches"):
        mixture.draw_block(np.random.default_rng(0), 10, batch_size=2)


@pytest.mark.parametrize(
    "settings",
    [
        {"distribution": "deterministic", "value_ms": 3.0},
        {"distribution": "scipy", "name": "gamma", "params": {"a": 2.0, "scale": 1.5}},
        H2,
        {"distribution": "mixture", "weights": [1, 1], "components": [H2, {"distribution": "deterministic", "value_ms": 1.0}]},
        {"distribution": "empirical", "file": "times.csv", "process": "replay"},
    ],
    ids=["deterministic", "scipy", "hyperexponential", "mixture", "empirical-replay"],
)
def test_scale_and_shift_apply_to_every_model(tmp_path, settings):
    csv(tmp_path, "ms\n" + "\n".join(str(v) for v in np.random.default_rng(2).lognormal(1, 0.4, 500)))
    plain = model(settings, tmp_path)
    moved = model({**settings, "scale": 2.0, "shift_ms": 0.5}, tmp_path)
    np.testing.assert_allclose(
        moved.draw_block(np.random.default_rng(3), 1000), plain.draw_block(np.random.default_rng(3), 1000) * 2.0 + 0.5
    )
    assert moved.mean_ms() == pytest.approx(2 * plain.mean_ms() + 0.5)
    assert moved.second_moment_ms2() == pytest.approx(4 * plain.second_moment_ms2() + 2 * plain.mean_ms() + 0.25)
    assert moved.third_moment_ms3() == pytest.approx(
        8 * plain.third_moment_ms3() + 3 * 4 * 0.5 * plain.second_moment_ms2() + 3 * 2 * 0.25 * plain.mean_ms() + 0.125
    )
    assert moved.ordered == plain.ordered


def _stream(built: ServiceTimeModel, count: int, seed: int = 4) -> np.ndarray:
    """``count`` draws the way a simulation makes them: blocks of DRAW_BLOCK_SIZE from one generator."""
    rng = np.random.default_rng(seed)
    return np.array(list(islice(draws(lambda size: built.draw_block(rng, size)), count)))


def test_replaying_a_sequence_longer_than_a_draw_block_keeps_its_order(tmp_path):
    n = 3 * DRAW_BLOCK_SIZE + 123
    csv(tmp_path, "ms\n" + "\n".join(str(i + 1) for i in range(n)))
    replay = model({"distribution": "empirical", "file": "times.csv", "process": "replay"}, tmp_path)
    assert replay.ordered
    np.testing.assert_array_equal(_stream(replay, 2 * n + 7), np.concatenate([np.arange(1, n + 1)] * 3)[: 2 * n + 7])


@pytest.mark.parametrize("process", [{"kind": "moving_block", "block_length": 3 * DRAW_BLOCK_SIZE}, {"kind": "stationary", "mean_block_length": 1e8}])
def test_blocks_longer_than_a_draw_block_continue_into_the_next_block(tmp_path, process):
    n = 5 * DRAW_BLOCK_SIZE
    csv(tmp_path, "ms\n" + "\n".join(str(i + 1) for i in range(n)))
    built = model({"distribution": "empirical", "file": "times.csv", "process": process}, tmp_path)
    steps = np.diff(_stream(built, 4 * DRAW_BLOCK_SIZE))
    jumps = np.flatnonzero((steps != 1) & (steps != 1 - n))  # a stationary block wraps around the record
    if process["kind"] == "moving_block":
        assert set(jumps + 1) <= {3 * DRAW_BLOCK_SIZE}  # new blocks start only every block_length draws
    else:  # blocks of mean length n (the cap): about 0.8 new ones in these draws, none forced by a draw block
        assert jumps.size <= 5 and not np.any((jumps + 1) % DRAW_BLOCK_SIZE == 0)


def test_the_auto_block_length_and_the_hmm_process_keep_the_measured_mean(tmp_path):
    rng = np.random.default_rng(5)
    slow_fast = np.where((np.arange(4000) // 200) % 2 == 0, 1.0, 4.0) * rng.lognormal(0, 0.1, 4000)
    csv(tmp_path, "ms\n" + "\n".join(map(str, slow_fast)))
    blocks = model({"distribution": "empirical", "file": "times.csv", "process": "moving_block"}, tmp_path)
    drawn = _stream(blocks, 40_000)
    assert np.corrcoef(drawn[:-1], drawn[1:])[0, 1] > 0.5  # the stretches survive
    chain = {"kind": "hmm", "transition": [[0.995, 0.005], [0.005, 0.995]], "mu_log": [0.0, math.log(4)], "sigma_log": [0.1, 0.1]}
    hmm = model({"distribution": "empirical", "file": "times.csv", "process": chain}, tmp_path)
    assert hmm.ordered and hmm.mean_ms() == pytest.approx(slow_fast.mean())
    drawn = _stream(hmm, 200_000)
    assert drawn.mean() == pytest.approx(slow_fast.mean(), rel=0.1)
    assert np.corrcoef(drawn[:-1], drawn[1:])[0, 1] > 0.5
    with pytest.raises(ValueError, match="needs transition, mu_log and sigma_log"):
        SERVICE_MODELS.validate({"distribution": "empirical", "file": "times.csv", "process": "hmm"})


def test_a_mixture_with_an_ordered_component_is_drawn_in_service_order(tmp_path):
    csv(tmp_path, "ms\n1\n2\n3\n")
    mixture = model(
        {"distribution": "mixture", "weights": [1, 1], "components": [{"distribution": "empirical", "file": "times.csv", "process": "replay"}, H2]},
        tmp_path,
    )
    assert mixture.ordered
    drawn = _stream(mixture, 10_000)
    replayed = drawn[np.isin(drawn, [1.0, 2.0, 3.0])]
    np.testing.assert_array_equal(replayed, np.resize([1.0, 2.0, 3.0], replayed.size))


def test_an_expression_of_columns_is_a_derived_service_time(tmp_path):
    csv(tmp_path, "latency_ms,service_ms\n5,3\n6,3.5\n4,4\n")
    overhead = model({"distribution": "empirical", "file": "times.csv", "expression": "latency_ms − service_ms", "process": "replay"}, tmp_path)
    np.testing.assert_allclose(overhead.draw_block(np.random.default_rng(0), 3), [2.0, 2.5, 0.0])
    csv(tmp_path, "a,b\n1,0\n", "zero.csv")
    with pytest.raises(ScenarioError, match=r"row 1 gives inf"):
        model({"distribution": "empirical", "file": "zero.csv", "expression": "a / b"}, tmp_path)
    with pytest.raises(ScenarioError, match="no column 'c'"):
        model({"distribution": "empirical", "file": "zero.csv", "expression": "a - c"}, tmp_path)
    for text in ("__import__('os')", "a ** 2", "a if b else 0"):
        with pytest.raises(ValueError, match="not allowed"):
            SERVICE_MODELS.validate({"distribution": "empirical", "file": "x.csv", "expression": text})


@pytest.mark.parametrize("service", [H2, PH], ids=["M/H2/1", "M/PH/1"])
def test_m_h2_1_and_m_ph_1_match_pollaczek_khinchine(service):
    data = base_scenario()
    mean_ms = model(service).mean_ms()
    data["workload"]["arrival"]["rate_per_s"] = 0.7 / mean_ms * 1000  # ρ = 0.7
    data["nodes"][0]["service"] = service
    data["run"] = {"requests": 40_000, "replications": 10, "seed": 3, "confidence": 0.999}
    scenario = scenario_from_dict(data)
    compared = analyze(scenario).compare(run(scenario))
    rows = compared.set_index(["name", "metric"])
    for metric in ("wait_ms.mean", "latency_ms.mean", "wait_probability"):
        row = rows.loc[("a", metric)]
        assert row["kind"] == "exact" and "Pollaczek" in row["formula"] or metric == "wait_probability"
        assert row["ci_low"] <= row["value"] <= row["ci_high"], (metric, row.to_dict())
    assert rows.loc[("n", "utilization"), "verdict"] == "agrees"
