"""Input validation of the service layer: finite times in [1e-6, 1e9] ms, sane data files, laws that sample in time.

Every refusal names where the problem is: the field path (through a scenario), or the file,
column and row of a data file.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from simulator import scenario_from_dict
from simulator.errors import ScenarioError
from simulator.registry import SERVICE_MODELS
from simulator.runner.checks import check_service_models
from simulator.service import distributions
from simulator.service.base import build_service_model
from tests.helpers import base_scenario

DETERMINISTIC = {"distribution": "deterministic", "value_ms": 2.0}
H2 = {"distribution": "hyperexponential", "weights": [1, 1], "means_ms": [1.0, 5.0]}


def scenario_with(service: dict, tmp_path=None):
    data = base_scenario()
    data["nodes"][0]["service"] = service
    return scenario_from_dict(data, base_dir=tmp_path)


@pytest.mark.parametrize(
    ("service", "field", "needle"),
    [
        ({**DETERMINISTIC, "value_ms": math.inf}, "value_ms", "finite"),
        ({**DETERMINISTIC, "value_ms": 1e308}, "value_ms", "less than or equal to 1000000000"),
        ({**DETERMINISTIC, "value_ms": 1e-310}, "value_ms", "greater than or equal to 0.000001"),
        ({**DETERMINISTIC, "value_ms": 0}, "value_ms", "greater than or equal"),
        ({**DETERMINISTIC, "shift_ms": 1e-300}, "shift_ms", "0 or at least 1e-06"),
        ({**DETERMINISTIC, "shift_ms": -1}, "shift_ms", "greater than or equal to 0"),
        ({**DETERMINISTIC, "scale": 0}, "scale", "greater than or equal to 0.000001"),
        ({**DETERMINISTIC, "scale": math.nan}, "scale", "finite"),
        ({"distribution": "scipy", "name": "expon", "params": {"scale": 1e300}}, "", "mean in [1e-06, 1e+09] ms"),
        ({"distribution": "scipy", "name": "expon", "params": {"scale": math.inf}}, "params", "finite"),
        ({"distribution": "scipy", "name": "pareto", "params": {"b": 0.5}}, "", "has mean inf ms"),
        ({**H2, "weights": [1, 0]}, "weights", "greater than 0"),
        ({**H2, "weights": [1, math.inf]}, "weights", "finite"),
        ({**H2, "means_ms": [1.0]}, "", "one entry per phase"),
        ({**H2, "means_ms": [1.0, 1e-310]}, "means_ms", "greater than or equal to 0.000001"),
        ({"distribution": "mixture", "weights": [1, -1], "components": [DETERMINISTIC, DETERMINISTIC]}, "weights", "greater than 0"),
        ({"distribution": "mixture", "weights": [1], "components": [DETERMINISTIC, DETERMINISTIC]}, "", "one entry each"),
        ({"distribution": "mixture", "weights": [1], "components": [{**DETERMINISTIC, "value_ms": 1e-310}]}, "components[0].value_ms", "0.000001"),
        ({"distribution": "phase_type", "alpha": [0.5, 0.4], "T": [[-1, 0], [0, -1]]}, "", "alpha must sum to 1"),
        ({"distribution": "phase_type", "alpha": [1.0], "T": [[1.0]]}, "", "diagonal must be < 0"),
        ({"distribution": "phase_type", "alpha": [1.0], "T": [[-1e-12]]}, "", "mean in [1e-06, 1e+09] ms"),
        ({"distribution": "empirical", "file": "x.csv", "process": {"kind": "moving_block", "block_length": 0}}, "block_length", ""),
        ({"distribution": "empirical", "file": "x.csv", "column": "a", "expression": "a - b"}, "", "not both"),
    ],
    ids=lambda value: None,
)
def test_numbers_out_of_range_are_refused_with_the_field_path(service, field, needle):
    with pytest.raises(ScenarioError) as refused:
        scenario_with(service)
    message = str(refused.value)
    assert "nodes[0].service" in message and field in message and needle in message, message


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("ms\n0\n0\n0\n", "holds only zeros"),
        ("ms\n1\n1e308\n", "row 2 holds 1e+308"),
        ("ms\n1e-310\n2e-310\n", "row 1 holds 1e-310; values here must be 0 or lie in [1e-06, 1e+09]"),
        ("ms\n1\n2\n-0.5\n", "row 3 holds -0.5"),
    ],
    ids=["all-zeros", "1e308", "subnormal", "negative"],
)
def test_empirical_files_with_impossible_times_are_refused_naming_file_column_and_row(tmp_path, content, needle):
    (tmp_path / "times.csv").write_text(content)
    scenario = scenario_with({"distribution": "empirical", "file": "times.csv"}, tmp_path)
    with pytest.raises(ScenarioError) as refused:
        check_service_models(scenario)
    message = str(refused.value)
    assert "nodes[0].service" in message and "times.csv" in message and needle in message, message


def test_some_zero_times_among_positive_ones_are_accepted(tmp_path):
    (tmp_path / "times.csv").write_text("ms\n0\n2\n4\n")
    built = build_service_model(SERVICE_MODELS.validate({"distribution": "empirical", "file": "times.csv"}), tmp_path)
    assert built.mean_ms() == pytest.approx(2.0)


def test_a_scipy_law_that_samples_slowly_is_built_with_a_warning_and_nothing_is_refused_for_speed(monkeypatch):
    """Against no time at all every law is slow: it is still built (a warning says so), and the measurement, not a
    refusal, is what is remembered: with the threshold back, the same law builds without a warning."""
    config = SERVICE_MODELS.validate({"distribution": "scipy", "name": "gamma", "params": {"a": 2.0}})
    monkeypatch.setattr(distributions, "SLOW_SECONDS_PER_BLOCK", -1.0)
    distributions._time_draws.cache_clear()
    with pytest.warns(distributions.SlowDrawWarning, match=r"scipy\.stats\.gamma draws slowly: about .* CPU s per 4,096 draws"):
        built = build_service_model(config, None)
    assert np.all(built.draw_block(np.random.default_rng(0), 100) > 0)
    monkeypatch.undo()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        build_service_model(config, None)
    distributions._time_draws.cache_clear()


def test_the_timing_counts_cpu_time_not_wall_time(monkeypatch):
    """A machine so busy that every draw takes an hour of wall time (time.perf_counter and time.time jump) changes nothing."""
    clock = iter(range(0, 10**9, 3600))
    monkeypatch.setattr(distributions.time, "perf_counter", lambda: float(next(clock)))
    monkeypatch.setattr(distributions.time, "time", lambda: float(next(clock)))
    distributions._time_draws.cache_clear()
    config = SERVICE_MODELS.validate({"distribution": "scipy", "name": "expon", "params": {"scale": 2.0}})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        build_service_model(config, None)
    distributions._time_draws.cache_clear()


def test_a_scipy_law_whose_draws_are_not_numbers_is_refused(monkeypatch):
    """What is wrong (NaN draws, here from a patched sampler) is refused, naming the law and its parameters."""
    from simulator.distributions import ScipyFrozen

    monkeypatch.setattr(ScipyFrozen, "sample", lambda self, rng, size: np.full(size, np.nan))
    distributions._time_draws.cache_clear()
    config = SERVICE_MODELS.validate({"distribution": "scipy", "name": "expon", "params": {"scale": 2.0}})
    with pytest.raises(ScenarioError, match=r"scipy\.stats\.expon with params \{'scale': 2\.0\} draws values that are not numbers"):
        build_service_model(config, None)
    distributions._time_draws.cache_clear()


def test_a_fast_scipy_law_is_timed_once_per_process():
    config = SERVICE_MODELS.validate({"distribution": "scipy", "name": "lognorm", "params": {"s": 0.4, "scale": 3.0}})
    build_service_model(config, None)
    hits = distributions._time_draws.cache_info().hits
    build_service_model(config, None)
    assert distributions._time_draws.cache_info().hits == hits + 1
    assert np.all(build_service_model(config, None).draw_block(np.random.default_rng(0), 100) > 0)
