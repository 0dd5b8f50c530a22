"""Arrival processes produce the rates and shapes they promise."""

from __future__ import annotations

from itertools import islice
from pathlib import Path

import numpy as np
import pytest

from simulator.random_streams import stream
from simulator.registry import ARRIVAL_PROCESSES
from simulator.scenario.workload import Workload
from simulator.workload import arrivals as _arrivals  # noqa: F401  (registers the processes)


def _process(config: dict, base_dir: Path = Path(".")):
    workload = Workload.model_validate({"arrival": config, "classes": [{"name": "a", "deadline_ms": 1, "kind": "hard"}]})
    return ARRIVAL_PROCESSES.build(workload.arrival, stream(3, 0, "arrivals"), base_dir)


def _gaps(config: dict, count: int, base_dir: Path = Path(".")) -> np.ndarray:
    return np.fromiter(islice(_process(config, base_dir).gaps_ms(), count), float)


def _rate_interval(gaps_ms: np.ndarray, batches: int = 50) -> tuple[float, float]:
    """99.9% t-interval of the arrival rate (per s) from batch means of the arrival counts."""
    times = np.cumsum(gaps_ms)
    edges = np.linspace(0, times[-1], batches + 1)
    rates = np.histogram(times, edges)[0] / np.diff(edges) * 1000
    half = 3.5 * rates.std(ddof=1) / np.sqrt(batches)
    return rates.mean() - half, rates.mean() + half


def test_poisson_gaps_are_exponential():
    from scipy import stats

    gaps = _gaps({"process": "poisson", "rate_per_s": 200}, 50_000)
    assert stats.kstest(gaps, "expon", args=(0, 5.0)).pvalue > 0.001
    low, high = _rate_interval(gaps)
    assert low <= 200 <= high


def test_deterministic_gaps_are_constant():
    assert np.all(_gaps({"process": "deterministic", "rate_per_s": 40}, 100) == 25.0)


def test_mmpp_long_run_rate_and_burstiness():
    config = {
        "process": "mmpp",
        "states": [{"rate_per_s": 100, "mean_duration_s": 2}, {"rate_per_s": 1000, "mean_duration_s": 1}],
    }
    process = _process(config)
    assert process.mean_rate_per_s() == pytest.approx(400)
    assert process.peak_rate_per_s() == 1000
    gaps = _gaps(config, 400_000)
    low, high = _rate_interval(gaps, batches=40)
    assert low <= 400 <= high
    # Bursty: squared coefficient of variation of the gaps well above Poisson's 1.
    assert gaps.var() / gaps.mean() ** 2 > 1.5


def test_on_off_source_sends_nothing_while_off():
    config = {"process": "mmpp", "states": [{"rate_per_s": 500, "mean_duration_s": 1}, {"rate_per_s": 0, "mean_duration_s": 4}]}
    gaps = _gaps(config, 50_000)
    assert _process(config).mean_rate_per_s() == pytest.approx(100)
    assert gaps.max() > 1000  # silent stretches of seconds


def test_piecewise_rate_follows_segments():
    config = {"process": "piecewise", "segments": [{"duration_s": 10, "rate_per_s": 100}, {"duration_s": 10, "rate_per_s": 500}]}
    times_s = np.cumsum(_gaps(config, 60_000)) / 1000
    phase = times_s % 20
    span_periods = np.floor(times_s[-1] / 20)
    counted = times_s < span_periods * 20
    low_rate = np.sum(counted & (phase < 10)) / (span_periods * 10)
    high_rate = np.sum(counted & (phase >= 10)) / (span_periods * 10)
    assert low_rate == pytest.approx(100, rel=0.1)
    assert high_rate == pytest.approx(500, rel=0.05)
    assert _process(config).mean_rate_per_s() == 300


def test_diurnal_rate_follows_the_sine():
    config = {"process": "diurnal", "mean_rate_per_s": 200, "amplitude": 0.5, "period_s": 40}
    times_s = np.cumsum(_gaps(config, 80_000)) / 1000
    whole = times_s < np.floor(times_s[-1] / 40) * 40
    first_half, second_half = np.histogram(times_s[whole] % 40, bins=2, range=(0, 40))[0]
    # ∫ 1 ± 0.5·sin over each half period: (20 ± 0.5·40/π); Poisson counts of ~50k and ~27k
    # give a relative standard deviation of 0.75% on their ratio, so 3% is four of them.
    expected_ratio = (20 + 20 / np.pi) / (20 - 20 / np.pi)
    assert first_half / second_half == pytest.approx(expected_ratio, rel=0.03)
    low, high = _rate_interval(_gaps(config, 80_000))
    assert low <= 200 <= high


def test_trace_replays_timestamps_and_ends(tmp_path):
    (tmp_path / "t.csv").write_text("ts\n" + "\n".join(str(t) for t in [5.0, 7.5, 7.5, 20.0]) + "\n")
    process = _process({"process": "trace", "file": "t.csv"}, tmp_path)
    assert list(process.gaps_ms()) == [0.0, 2.5, 0.0, 12.5]
    assert process.max_arrivals() == 4
    scaled = _process({"process": "trace", "file": "t.csv", "time_scale": 1000}, tmp_path)
    assert list(scaled.gaps_ms())[1] == 2500.0


@pytest.mark.parametrize("shares", [[0.3, 0.7], [1, 2, 3, 4], [1 / 3, 1 / 3, 1 / 3]])
def test_class_draws_are_generator_choice_draws_one_by_one_or_as_arrays(shares):
    """Each arrival's class is what ``Generator.choice`` with the shares draws (the numbers of earlier
    versions), the same whether the SimPy model takes them one at a time or the fast engine in arrays."""
    from simulator.runner.inputs import _class_draws

    classes = list(range(5, 5 + len(shares)))
    rng = stream(7, 1, "classes")
    expected = np.concatenate(
        [np.asarray(classes)[rng.choice(len(shares), 4096, p=[s / sum(shares) for s in shares])] for _ in range(5)]
    )[:20_000]
    as_arrays = _class_draws(classes, shares, 7, 1).take(20_000)
    one_by_one = np.fromiter(islice(_class_draws(classes, shares, 7, 1), 20_000), np.int64)
    assert np.array_equal(as_arrays, expected) and np.array_equal(one_by_one, expected)
    with pytest.raises(RuntimeError, match="one value at a time or as arrays"):
        mixed = _class_draws(classes, shares, 7, 1)
        next(mixed)
        mixed.take(10)
