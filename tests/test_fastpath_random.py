"""The fast engine against the SimPy model on random scenarios: the same records, request by request.

Each case draws a scenario (fixed seeds) over the features the fast engine covers: queue disciplines,
admission, bounded queues, replicas behind every router it serves, partitions by hash or key range
(a router each), node specs side by side, a machine
under each node (speed process with or without spreads, occupancy slowdown, overhead with or without
variation), a device whose calls share its compute (factors by concurrency, or processor sharing) and a network (``delay`` both ways, or request and response legs, deterministic ones
making ties). Both engines must give identical summaries and per-request records for the same seed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from simulator import run, scenario_from_dict
from simulator.fastpath.eligibility import ineligibility
from simulator.fastpath.kernel import chain_states
from simulator.model.machine import OccupancyCurve, Speed
from simulator.random_streams import DRAW_BLOCK_SIZE, stream
from simulator.runner.plan import plan_run
from simulator.scenario.nodes import SpeedSpec

MACHINE_CASES = 70
NETWORK_CASES = 40


def _service(rng: np.random.Generator, mean_ms: float) -> dict:
    if rng.random() < 0.5:
        return {"distribution": "scipy", "name": "expon", "params": {"scale": mean_ms}}
    return {"distribution": "scipy", "name": "lognorm", "params": {"s": float(rng.uniform(0.2, 1.0)), "scale": mean_ms * 0.8}}


def _curve(rng: np.random.Generator, name: str, low: float, high: float) -> dict:
    points = int(rng.integers(1, 4))
    occupancy = np.cumsum(rng.uniform(0.5, 4.0, points)).round(1).tolist()
    return {"occupancy": occupancy, name: rng.uniform(low, high, points).round(3).tolist()}


def _machine(rng: np.random.Generator) -> dict:
    """A node's speed process, occupancy slowdown and overhead, each there or not."""
    machine = {}
    if rng.random() < 0.7:
        states = int(rng.integers(1, 4))
        rows = rng.dirichlet(np.ones(states), states).round(3)
        rows[:, -1] = 1.0 - rows[:, :-1].sum(axis=1)
        speed = {"factors": rng.uniform(0.6, 1.5, states).round(3).tolist(), "transition": rows.tolist()}
        if rng.random() < 0.5:
            speed["variation_sigma"] = [float(x) if rng.random() < 0.8 else 0.0 for x in rng.uniform(0.05, 0.6, states).round(3)]
        machine["speed"] = speed
    if rng.random() < 0.5:
        machine["occupancy_slowdown"] = _curve(rng, "factors", 0.8, 1.6)
    if rng.random() < 0.6:
        machine["overhead"] = _curve(rng, "mean_ms", 0.0, 3.0) | ({"variation_sigma": float(rng.uniform(0.1, 0.8))} if rng.random() < 0.6 else {})
    return machine


def _network(rng: np.random.Generator) -> dict:
    def delay() -> dict:
        if rng.random() < 0.3:  # the same delay every time: events coincide
            return {"distribution": "deterministic", "value_ms": float(rng.choice([0.5, 1.0, 2.0]))}
        return {"distribution": "scipy", "name": "expon", "params": {"scale": float(rng.uniform(0.2, 4.0))}}

    shape = rng.choice(["delay", "request", "response", "both legs"])
    if shape == "delay":
        return {"delay": delay()}
    return {leg: delay() for leg in ("request", "response") if shape in (leg, "both legs")}


def random_scenario(case: int, network: bool) -> dict:
    """A scenario at a moderate load over the covered features, drawn from seed ``case``."""
    rng = np.random.default_rng([case, network])
    specs, instances, instance_rates_per_s = [], 0, []
    for index in range(1 if rng.random() < 0.75 else 2):
        workers, replicas = int(rng.integers(1, 4)), int(rng.integers(1, 4))
        mean_ms = float(rng.uniform(4.0, 12.0))
        machine = _machine(rng)
        slowdown = 1.0
        if rng.random() < 0.4:
            factors = [1.0, *np.cumsum(rng.uniform(0.0, 0.5, int(rng.integers(1, 4)))).round(3) + 1.0]
            sharing = "processor_sharing" if rng.random() < 0.3 else factors
            machine["device"] = {"concurrency_slowdown": sharing}
            slowdown = workers if sharing == "processor_sharing" else factors[min(workers, len(factors)) - 1]
        spec = {"name": f"node{index}", "workers": workers, "replicas": replicas, "service": _service(rng, mean_ms),
                "discipline": {"policy": str(rng.choice(["fifo", "priority", "edf"]))},
                "admission": {"policy": str(rng.choice(["none", "expired", "predictive"]))}, **machine}
        if rng.random() < 0.3:
            spec["queue_capacity"] = int(rng.integers(0, 6))
        specs.append(spec)
        slowest_ms = mean_ms * max(machine.get("speed", {}).get("factors", [1.0])) * max(
            machine.get("occupancy_slowdown", {}).get("factors", [1.0])) + max(machine.get("overhead", {}).get("mean_ms", [0.0]))
        instances += replicas
        instance_rates_per_s.append(workers * 1000 / slowest_ms / slowdown)
    capacity_per_s = instances * min(instance_rates_per_s)  # routers spread requests about evenly over the instances
    data = {
        "name": f"random-{case}",
        "run": {"requests": 1500, "warmup_requests": 150, "replications": 1, "seed": int(rng.integers(1, 10**6))},
        "workload": {
            "arrival": {"process": "poisson", "rate_per_s": round(float(rng.uniform(0.3, 0.85)) * capacity_per_s, 2)},
            "classes": [
                {"name": "urgent", "share": 0.3, "priority": 0, "deadline_ms": 30, "kind": "firm"},
                {"name": "bulk", "share": 0.7, "priority": 1, "deadline_ms": 90, "kind": "soft", "target": 0.9},
            ],
        },
        "nodes": specs,
        "router": {"policy": str(rng.choice(["round_robin", "random", "jsq", "power_of_two", "least_work"]))},
    }
    if rng.random() < 0.3:
        partitions = int(rng.integers(2, 4))
        data["workload"]["keys"] = {"popularity": "uniform", "catalog_size": int(rng.integers(50, 5000))}
        data["partitioning"] = {"scheme": str(rng.choice(["hash", "range"])), "partitions": partitions}
        data["workload"]["arrival"]["rate_per_s"] = round(data["workload"]["arrival"]["rate_per_s"] * partitions * 0.7, 2)
    if network:
        data["network"] = _network(rng)
    return data


def _outputs(data: dict, engine: str, folder) -> tuple[dict, pd.DataFrame]:
    path = folder / f"{engine}.parquet"
    result = run(scenario_from_dict(data, base_dir=folder), engine=engine, records_path=path)
    summary = dict(result.summary)
    assert summary.pop("engine") == engine
    return summary, pd.read_parquet(path)


CASES = [(case, False) for case in range(MACHINE_CASES)] + [(case, True) for case in range(NETWORK_CASES)]


@pytest.mark.parametrize(("case", "network"), CASES, ids=[f"{'network' if n else 'machine'}-{c}" for c, n in CASES])
def test_random_scenarios_give_the_simpy_models_records(case, network, tmp_path):
    data = random_scenario(case, network)
    assert ineligibility(scenario_from_dict(data)) is None
    simpy_summary, simpy_records = _outputs(data, "simpy", tmp_path)
    fast_summary, fast_records = _outputs(data, "fast", tmp_path)
    assert len(simpy_records) >= 1650
    pd.testing.assert_frame_equal(fast_records, simpy_records, check_exact=True)
    assert fast_summary == simpy_summary


def test_auto_takes_the_fast_engine_for_machines_and_networks():
    data = random_scenario(3, True)
    data["nodes"][0] |= {"speed": {"factors": [1.0, 2.0], "transition": [[0.9, 0.1], [0.5, 0.5]], "variation_sigma": [0.1, 0.3]},
                         "overhead": {"occupancy": [1, 4], "mean_ms": [0.5, 1.0], "variation_sigma": 0.3},
                         "occupancy_slowdown": {"occupancy": [1, 3], "factors": [1.0, 1.2]}}
    assert plan_run(scenario_from_dict(data), requests=100_000).engine == "fast"


def test_speed_factors_drawn_in_blocks_are_those_drawn_call_by_call():
    """The fast engine reads a speed process's uniforms and normals (one generator) in blocks and steps the chain
    compiled: the factors must be those ``next_factor`` gives, across many draw blocks."""
    spec = SpeedSpec(factors=[0.7, 1.0, 2.5], transition=[[0.8, 0.15, 0.05], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4]],
                     variation_sigma=[0.2, 0.0, 0.5])
    calls = 3 * DRAW_BLOCK_SIZE + 77
    one_by_one = Speed(spec, stream(5, 0, "speed/n"))
    expected = np.array([one_by_one.next_factor() for _ in range(calls)])
    in_blocks = Speed(spec, stream(5, 0, "speed/n"))
    state, factors = in_blocks.state, []
    for size in (1000, DRAW_BLOCK_SIZE, 5, calls - 1005 - DRAW_BLOCK_SIZE):
        uniforms, normals = in_blocks.next_draws(size)
        states = chain_states(in_blocks.cumulative, state, uniforms)
        state = int(states[-1])
        factors.append(in_blocks.factors_of(states[:-1], normals))
    np.testing.assert_array_equal(np.concatenate(factors), expected)
    assert state == one_by_one.state


def test_an_occupancy_curve_as_a_table_is_its_values_one_by_one():
    curve = OccupancyCurve([1.0, 2.5, 7.3], [0.4, 3.1, 1.7])
    table = curve.table(100)
    assert len(table) == 9  # flat from occupancy 8 on
    assert table.tolist() == [curve(k) for k in range(9)] and curve(50) == table[-1]
    assert len(curve.table(4)) == 5


def test_a_calibrated_node_runs_on_the_fast_engine_with_the_simpy_models_numbers(tmp_path):
    """A calibration gives its node a speed process, an overhead by occupancy, a device slowdown (two workers) and
    the network's response leg: every piece the fast engine now simulates."""
    calibration = {
        "fitted_on": {"method": "server_side", "rate_per_s": [100.0, 300.0]},
        "overhead": {"occupancy": [1.0, 4.0], "mean_ms": [0.4, 0.9], "variation_sigma": 0.3},
        "levels": [{"level": level, "rate_per_s": rate,
                    "speed": {"factors": [0.9, 1.6], "transition": [[0.95, 0.05], [0.2, 0.8]], "variation_sigma": [0.1, 0.2]},
                    "device": {"concurrency_slowdown": [1.0, 1.25 + level / 10]},
                    "outside": {"distribution": "scipy", "name": "expon", "params": {"scale": 0.7}}}
                   for level, rate in ((0.3, 100.0), (0.8, 300.0))],
    }
    (tmp_path / "cal.yaml").write_text(yaml.safe_dump(calibration))
    data = random_scenario(0, False)
    data["nodes"] = [{"name": "server", "workers": 2, "calibration": {"file": "cal.yaml"},
                      "service": {"distribution": "scipy", "name": "expon", "params": {"scale": 5.0}}}]
    data["workload"]["arrival"]["rate_per_s"] = 200.0
    loaded = scenario_from_dict(data, base_dir=tmp_path)
    plan = plan_run(loaded, requests=100_000)
    assert plan.engine == "fast" and plan.scenario.network is not None and plan.scenario.nodes[0].device is not None
    simpy_summary, simpy_records = _outputs(data, "simpy", tmp_path)
    fast_summary, fast_records = _outputs(data, "fast", tmp_path)
    pd.testing.assert_frame_equal(fast_records, simpy_records, check_exact=True)
    assert fast_summary == simpy_summary
