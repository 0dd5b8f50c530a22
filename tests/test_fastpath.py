"""The fast engine against the SimPy model: the same numbers, request by request, wherever it runs.

Three kinds of evidence. **Exact**: on a grid of eligible scenarios — every discipline, admission
policy and router it serves, bounded queues and loss systems, node specs side by side, per-class
arrival processes, traces, keys, deterministic arrivals and service (ties everywhere) — both
engines give identical summaries, per-request records and time series for the same seed.
**In distribution**: with independent seeds, every estimate of one engine lies within the
combined 99.9 % intervals of the two (more than 60 statistics per case, most of them known to
within 5 %), while the same check flags a model 5 % slower — a test with power, not a formality. **Choice**: ``auto``
takes the fast engine exactly where it is eligible, and forcing it elsewhere names the feature
that rules it out.
"""

from __future__ import annotations

import math
import re
from functools import partial

import numpy as np
import pandas as pd
import pytest

from simulator import run, scenario_from_dict
from simulator.errors import ScenarioError, UnstableSystemError
from simulator.fastpath.eligibility import ineligibility
from simulator.model.build import requirement_draws, service_models
from simulator.runner.plan import plan_run

MEAN_MS = 10.0


def expon(mean_ms: float) -> dict:
    return {"distribution": "scipy", "name": "expon", "params": {"scale": mean_ms}}


def scenario(**changes) -> dict:
    """An M/M/2-like scenario at ρ ≈ 0.75, two classes; ``changes`` replace top-level sections."""
    data = {
        "name": "fast",
        "run": {"requests": 6000, "warmup_requests": 600, "replications": 2, "seed": 11},
        "workload": {
            "arrival": {"process": "poisson", "rate_per_s": 150},
            "classes": [
                {"name": "urgent", "share": 0.3, "priority": 0, "deadline_ms": 25, "kind": "firm"},
                {"name": "bulk", "share": 0.7, "priority": 1, "deadline_ms": 80, "kind": "soft", "target": 0.9},
            ],
        },
        "nodes": [{"name": "n", "workers": 2, "discipline": {"policy": "priority"}, "service": expon(MEAN_MS)}],
    }
    data.update(changes)
    return data


def node(**settings) -> dict:
    return {"name": "n", "workers": 2, "service": expon(MEAN_MS), **settings}


def outputs(data: dict, engine: str, folder, seed: int | None = None) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """Summary (without the engine's name), per-request records and time series of one engine's run."""
    path = folder / f"{engine}.parquet"
    result = run(scenario_from_dict(data, base_dir=folder), engine=engine, records_path=path, monitor=True, seed=seed)
    summary = dict(result.summary)
    assert summary.pop("engine") == engine
    return summary, pd.read_parquet(path), result.timeseries


def write_trace(folder, name: str, timestamps_ms: np.ndarray) -> str:
    pd.DataFrame({"t": timestamps_ms}).to_csv(folder / name, index=False)
    return name


def _bursts(calm_s: float = 4.0, burst_s: float = 1.0) -> dict:
    """Markov-modulated arrivals: calm at 100/s, bursts at 330/s (above two workers' capacity)."""
    return {"process": "mmpp", "states": [{"rate_per_s": 100, "mean_duration_s": calm_s}, {"rate_per_s": 330, "mean_duration_s": burst_s}]}


def _ties(folder) -> dict:
    """Deterministic arrivals every 5 ms, services of exactly 10 and 15 ms: completions and arrivals coincide."""
    classes = [
        {"name": "a", "share": 0.5, "priority": 1, "deadline_ms": 30, "kind": "firm",
         "service": {"distribution": "deterministic", "value_ms": 10.0}},
        {"name": "b", "share": 0.5, "priority": 0, "deadline_ms": 40, "kind": "firm",
         "service": {"distribution": "deterministic", "value_ms": 15.0}},
    ]
    return scenario(
        workload={"arrival": {"process": "deterministic", "rate_per_s": 200}, "classes": classes},
        nodes=[node(workers=3, discipline={"policy": "priority"}, admission={"policy": "expired"})],
    )


def _trace(folder) -> dict:
    """A replayed trace with repeated timestamps that ends before the run zone is full."""
    rng = np.random.default_rng(5)
    stamps = np.round(np.cumsum(rng.exponential(6.0, 5000)), 0)  # whole ms: many arrivals share a time
    data = scenario(workload={
        "arrival": {"process": "trace", "file": write_trace(folder, "trace.csv", stamps), "column": "t"},
        "classes": [{"name": "api", "deadline_ms": 40, "kind": "soft", "target": 0.9}],
    })
    data["run"] = {"requests": 8000, "warmup_requests": 500, "replications": 2, "seed": 3}
    data["nodes"] = [node(service={"distribution": "deterministic", "value_ms": 9.0})]
    return data


def _empirical(folder) -> dict:
    samples = np.random.default_rng(2).gamma(2.0, 5.0, 500)
    pd.DataFrame({"ms": samples}).to_csv(folder / "service.csv", index=False)
    return scenario(nodes=[node(discipline={"policy": "fifo"}, service={"distribution": "empirical", "file": "service.csv", "column": "ms"})])


def _per_class_streams(folder) -> dict:
    classes = [
        {"name": "shared", "share": 1.0, "priority": 1, "deadline_ms": 60, "kind": "soft", "target": 0.9},
        {"name": "own", "priority": 0, "deadline_ms": 30, "kind": "firm", "arrival": {"process": "poisson", "rate_per_s": 60},
         "service": {"distribution": "scipy", "name": "lognorm", "params": {"s": 0.6, "scale": 8.0}}},
        {"name": "bursty", "priority": 2, "arrival": _bursts() | {"states": [{"rate_per_s": 20, "mean_duration_s": 2},
                                                                               {"rate_per_s": 60, "mean_duration_s": 1}]}},
    ]
    return scenario(workload={"arrival": {"process": "poisson", "rate_per_s": 60}, "classes": classes},
                    nodes=[node(workers=3, discipline={"policy": "edf"})])


def _long_queue(folder) -> dict:
    """Crosses every boundary: several 65,536-request chunks, input refills, thousands waiting at once."""
    data = scenario(workload={"arrival": {"process": "mmpp", "states": [{"rate_per_s": 100, "mean_duration_s": 40},
                                                                       {"rate_per_s": 600, "mean_duration_s": 10}]},
                              "classes": [{"name": "a", "deadline_ms": 500, "kind": "soft", "target": 0.5}]},
                    nodes=[node(workers=3, discipline={"policy": "fifo"})])
    data["run"] = {"requests": 150_000, "replications": 1, "seed": 4}
    return data


def _replicas(policy: str, folder) -> dict:
    return scenario(router={"policy": policy}, workload=scenario()["workload"] | {"arrival": {"process": "poisson", "rate_per_s": 420}},
                    nodes=[node(replicas=3, discipline={"policy": "priority"}, queue_capacity=8)])


GRID = {
    "fifo one worker": lambda folder: scenario(nodes=[node(workers=1, discipline={"policy": "fifo"})],
                                               workload=scenario()["workload"] | {"arrival": {"process": "poisson", "rate_per_s": 70}}),
    "priority, class services": lambda folder: scenario(workload=scenario()["workload"] | {"classes": [
        c | {"service": {"distribution": "scipy", "name": "lognorm", "params": {"s": 0.8, "scale": 7.0}}} for c in scenario()["workload"]["classes"]]}),
    "edf bounded predictive mmpp": lambda folder: scenario(
        workload=scenario()["workload"] | {"arrival": _bursts()},
        nodes=[node(workers=3, discipline={"policy": "edf"}, queue_capacity=6, admission={"policy": "predictive"})]),
    "fifo expired": lambda folder: scenario(nodes=[node(discipline={"policy": "fifo"}, admission={"policy": "expired"})]),
    "loss system": lambda folder: scenario(nodes=[node(workers=3, queue_capacity=0)]),
    "loss system with admission": lambda folder: scenario(nodes=[node(workers=3, queue_capacity=0, admission={"policy": "expired"})]),
    **{f"3 replicas {policy}": partial(_replicas, policy) for policy in ("round_robin", "random", "jsq", "power_of_two")},
    "two specs behind one router": lambda folder: scenario(
        router={"policy": "jsq"},
        nodes=[node(name="small", workers=1, admission={"policy": "predictive"}),
               node(name="big", workers=3, discipline={"policy": "edf"}, service=expon(6.0))]),
    "deterministic ties": _ties,
    "trace that runs out": _trace,
    "empirical service": _empirical,
    "a stream per class": _per_class_streams,
    "keys": lambda folder: scenario(workload=scenario()["workload"] | {"keys": {"popularity": "zipf", "catalog_size": 1000, "exponent": 0.9}}),
    "diurnal": lambda folder: scenario(workload=scenario()["workload"] | {
        "arrival": {"process": "diurnal", "mean_rate_per_s": 150, "amplitude": 0.5, "period_s": 20}}),
    "long queue, many chunks": _long_queue,
}


@pytest.mark.parametrize("case", GRID)
def test_both_engines_give_identical_outputs(case, tmp_path):
    data = GRID[case](tmp_path)
    assert ineligibility(scenario_from_dict(data, base_dir=tmp_path)) is None
    simpy_summary, simpy_records, simpy_series = outputs(data, "simpy", tmp_path)
    fast_summary, fast_records, fast_series = outputs(data, "fast", tmp_path)
    assert fast_summary == simpy_summary
    pd.testing.assert_frame_equal(fast_records, simpy_records, check_exact=True)
    pd.testing.assert_frame_equal(fast_series, simpy_series, check_exact=True)
    assert len(simpy_records) >= 2 * min(data["run"]["requests"], 5000)  # the run really simulated something


def test_a_queue_past_the_limit_stops_both_engines_alike():
    data = scenario(workload=scenario()["workload"] | {"arrival": {"process": "mmpp", "states": [
        {"rate_per_s": 60, "mean_duration_s": 10}, {"rate_per_s": 400, "mean_duration_s": 2}]}})
    data["run"]["max_queue_length"] = 40
    messages = []
    for engine in ("simpy", "fast"):
        with pytest.raises(UnstableSystemError) as error:
            run(scenario_from_dict(data), engine=engine)
        messages.append(str(error.value))
    assert messages[0] == messages[1] and "max_queue_length=40" in messages[0]


def test_bulk_requirements_are_the_draws_made_one_arrival_at_a_time():
    """The fast engine draws service needs in blocks; they must be those the SimPy model draws one by one."""
    data = scenario(workload=scenario()["workload"] | {"classes": [
        c | {"service": {"distribution": "scipy", "name": "gamma", "params": {"a": 0.7, "scale": 4.0}}}
        for c in scenario()["workload"]["classes"]]})
    loaded = scenario_from_dict(data)
    models = service_models(loaded)
    classes = np.random.default_rng(0).integers(0, 2, 10_000)
    draws = requirement_draws(loaded, models, 3, 1)
    one_by_one = np.array([draws(int(k)) for k in classes])
    bulk = requirement_draws(loaded, models, 3, 1)
    blocks = np.concatenate([bulk.block(classes[:3000]), bulk.block(classes[3000:3001]), bulk.block(classes[3001:])])
    np.testing.assert_array_equal(blocks, one_by_one)


# -- in distribution, with independent seeds ------------------------------------------------------


def _estimates(result) -> dict[str, tuple[float, float, float]]:
    """Every statistic of the summary that has an interval: (estimate, low, high)."""
    frame = result.to_frame()
    frame = frame[frame["ci_low"].notna() & frame["ci_high"].notna()]
    return {f"{row.scope}:{row.name}:{row.metric}": (row.estimate, row.ci_low, row.ci_high) for row in frame.itertuples()}


def _disagreements(first, second) -> list[str]:
    """Statistics (with an interval in both runs) whose estimates differ by more than the two half-widths together."""
    a, b = _estimates(first), _estimates(second)
    problems = []
    for name in sorted(a.keys() & b.keys()):
        (x, x_low, x_high), (y, y_low, y_high) = a[name], b[name]
        reach = max(x_high - x, x - x_low) + max(y_high - y, y - y_low)
        if abs(x - y) > reach:
            problems.append(f"{name}: {x:.6g} vs {y:.6g} (together ±{reach:.3g})")
    return problems


DISTRIBUTION_CASES = {
    "M/M/3 priority": scenario(nodes=[node(workers=3, discipline={"policy": "priority"})],
                               workload=scenario()["workload"] | {"arrival": {"process": "poisson", "rate_per_s": 210}}),
    "EDF, bounded, predictive, bursts": scenario(
        workload=scenario()["workload"] | {"arrival": _bursts(0.4, 0.1)},
        nodes=[node(workers=3, discipline={"policy": "edf"}, queue_capacity=10, admission={"policy": "predictive"})]),
    "3 replicas jsq, expired": scenario(router={"policy": "jsq"}, nodes=[node(replicas=3, admission={"policy": "expired"})],
                                        workload=scenario()["workload"] | {"arrival": {"process": "poisson", "rate_per_s": 420}}),
}


def _long(data: dict, seed: int) -> dict:
    return data | {"run": {"requests": 40_000, "warmup_requests": 4_000, "replications": 10, "seed": seed, "confidence": 0.999}}


@pytest.mark.parametrize("case", DISTRIBUTION_CASES)
def test_engines_agree_in_distribution_with_independent_seeds(case):
    simpy_run = run(scenario_from_dict(_long(DISTRIBUTION_CASES[case], 101)), engine="simpy")
    fast_run = run(scenario_from_dict(_long(DISTRIBUTION_CASES[case], 202)), engine="fast")
    assert not _disagreements(simpy_run, fast_run)
    compared = _estimates(simpy_run).keys() & _estimates(fast_run).keys()
    assert len(compared) >= 60  # means, quantiles, ratios and rates per class; utilization and queue per node
    narrow = [name for name in compared if _relative_half_width(*_estimates(fast_run)[name]) < 0.05]
    assert len(narrow) >= len(compared) / 2, "the intervals are too wide to tell the engines apart"
    # the same check tells apart a system whose service is 5 % slower
    slower = DISTRIBUTION_CASES[case] | {"nodes": [n | {"service": expon(MEAN_MS * 1.05)} for n in DISTRIBUTION_CASES[case]["nodes"]]}
    assert _disagreements(simpy_run, run(scenario_from_dict(_long(slower, 303)), engine="fast"))


def _relative_half_width(estimate: float, low: float, high: float) -> float:
    return (high - low) / 2 / abs(estimate) if estimate else math.inf


# -- which engine runs --------------------------------------------------------------------------


INELIGIBLE = {
    "cache": ({"workload": scenario()["workload"] | {"keys": {"popularity": "zipf", "catalog_size": 100, "exponent": 1.0}},
               "cache": {"policy": {"policy": "lru", "capacity_entries": 10}, "hit_latency": {"distribution": "deterministic", "value_ms": 0.3}}},
              "a result cache (cache)"),
    "pipeline": ({"nodes": [node(name="a"), node(name="b")], "pipeline": {"stages": ["a", "b"], "transfer": {"distribution": "deterministic", "value_ms": 1.0}}},
                 "pipeline"),
    "events": ({"events": [{"type": "failure", "nodes": ["n"], "at_s": 1, "duration_s": 1}]}, "events"),
    "batching": ({"nodes": [node(batching={"max_batch_size": 4, "max_queue_delay_ms": 2.0}, service=expon(MEAN_MS) | {"batch_scaling": {"per_extra_item": 0.5}})]},
                 "nodes[0].batching"),
    "device copies": ({"nodes": [node(device={"h2d": {"distribution": "deterministic", "value_ms": 1.0}})]}, "nodes[0].device.h2d"),
    "queue policy": ({"nodes": [node(queue_policy={"default": {"timeout_ms": 50}})]}, "nodes[0].queue_policy"),
    "preemption": ({"nodes": [node(discipline={"policy": "preemptive_priority"})]}, "nodes[0].discipline"),
    "router": ({"router": {"policy": "peak_ewma"}, "nodes": [node(replicas=2)]}, "router.policy"),
}


@pytest.mark.parametrize("case", INELIGIBLE)
def test_forcing_the_fast_engine_names_what_rules_it_out(case):
    changes, field = INELIGIBLE[case]
    loaded = scenario_from_dict(scenario(**changes))
    with pytest.raises(ScenarioError, match=f"fast engine cannot simulate.*{re.escape(field)}"):
        plan_run(loaded, engine="fast")
    assert plan_run(loaded, requests=100_000).engine == "simpy"


def test_auto_takes_the_fast_engine_where_it_is_eligible_and_the_run_is_worth_loading_it():
    loaded = scenario_from_dict(scenario())
    assert plan_run(loaded, requests=30_000).engine == "fast" and plan_run(loaded, requests=30_000, engine="simpy").engine == "simpy"
    assert plan_run(loaded, requests=1000).engine == "simpy" and plan_run(loaded, requests=1000, engine="fast").engine == "fast"
    result = run(loaded, requests=30_000)
    assert result.summary["engine"] == "fast" and list(result.summary)[:2] == ["scenario", "engine"]
    with pytest.raises(ScenarioError, match="engine"):
        plan_run(loaded, engine="turbo")


def test_a_service_process_drawn_in_service_order_is_the_simpy_models(tmp_path):
    pd.DataFrame({"ms": np.random.default_rng(1).gamma(2.0, 5.0, 300)}).to_csv(tmp_path / "s.csv", index=False)
    service = {"distribution": "empirical", "file": "s.csv", "column": "ms", "process": {"kind": "moving_block", "block_length": 5}}
    loaded = scenario_from_dict(scenario(nodes=[node(service=service)]), base_dir=tmp_path)
    assert "drawn in service order" in ineligibility(loaded)


def test_the_fast_engine_is_reproducible_with_jobs():
    loaded = scenario_from_dict(scenario())
    assert run(loaded, engine="fast", jobs=2).to_json() == run(loaded, engine="fast").to_json()
