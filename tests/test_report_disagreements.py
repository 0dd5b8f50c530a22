"""Theory beside simulation: each disagreement named by the assumption of theory that breaks, agreement left alone."""

from __future__ import annotations

from simulator.report.disagreements import estimate_gap, mean_batch, node_setting, utilization_gap

ITEM = {"estimate": 6.4, "ci_low": 6.0, "ci_high": 6.9}


def test_utilisation_close_to_the_offered_load_agrees():
    assert utilization_gap(0.78, 0.80, {"1": 100}) is None
    assert utilization_gap(None, 0.9, {}) is None


def test_a_busier_batching_node_is_explained_by_theorys_full_batches():
    why = utilization_gap(0.78, 0.93, {"1": 50, "4": 50})
    assert why.startswith("busier than theory") and "every batch is full" in why and "2.5 requests on average" in why


def test_a_busier_node_without_batches_is_explained_by_the_least_overhead():
    assert "least overhead and slowdown and no model loads" in utilization_gap(0.5, 0.7, {"1": 10})


def test_a_less_busy_node_is_explained_by_calls_theory_counts():
    assert utilization_gap(0.9, 0.6, {}).startswith("less busy than theory")


def test_an_estimate_inside_the_interval_agrees():
    assert estimate_gap(6.5, ITEM, {}) is None
    assert estimate_gap(None, ITEM, {}) is None and estimate_gap(6.5, {"estimate": 1, "ci_low": None, "ci_high": None}, {}) is None


def test_an_estimate_off_the_simulation_names_the_assumptions_that_break():
    why = estimate_gap(24.0, ITEM, {"arrival": "mmpp", "discipline": "priority", "batching": True, "batch_sizes": {"2": 3, "4": 1}})
    assert why.startswith("the M/G/c estimate is above the simulation: ")
    assert "Poisson arrivals, these are mmpp" in why and "serves by priority" in why and "2.5 on average" in why
    plain = estimate_gap(5.0, ITEM, {"arrival": "poisson", "discipline": "fifo", "batching": False})
    assert plain.startswith("the M/G/c estimate is below the simulation: no assumption of it is broken")


def test_the_setting_takes_the_configurations_dimensions_over_the_base_node():
    parameters = {"workload": {"arrival": {"process": "poisson"}, "classes": [{"name": "a", "arrival": None}]},
                  "nodes": [{"name": "n", "discipline": {"policy": "fifo"}, "batching": None}]}
    assert node_setting(parameters, "n", {}) == {"arrival": "poisson", "discipline": "fifo", "batching": False}
    varied = node_setting(parameters, "n", {"discipline": {"policy": "edf"}, "batching": {"max_batch_size": 4}})
    assert varied == {"arrival": "poisson", "discipline": "edf", "batching": True}
    assert mean_batch({}) is None and mean_batch({"1": 1, "3": 1}) == 2.0
