"""Result caches and key popularity: policy mechanics, and hit ratios against closed-form theory.

Statistical checks compare a measured hit ratio over n post-warm-up requests with theory within
4 binomial standard errors sqrt(h(1−h)/n) (batch means over 40 × 250k requests give the same
error to within 20%: successive hits are nearly independent) plus, for LRU, Che's approximation
error. That error is below 1% absolute for N ≥ 1000 and C ≥ 50 under Zipf, and below 0.001 for
the workloads here (long runs: see LRU_CHE_BIAS); seeds are fixed, so the checks are repeatable.
"""

from __future__ import annotations

from itertools import islice
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.stats
from pydantic import TypeAdapter, ValidationError

from simulator import run, scenario_from_dict
from simulator.analytic import (
    che_characteristic_time,
    che_lru_hit_ratio,
    lfu_static_hit_ratio,
    ttl_hit_ratio,
    zipf_popularity,
)
from simulator.errors import ScenarioError
from simulator.model.cache import ResultCache
from simulator.random_streams import stream
from simulator.registry import CACHE_POLICIES, KEY_POPULARITY
from simulator.workload.keys import KeyPopularity
from tests.helpers import base_scenario

LRU_CHE_BIAS = 0.002  # Che's error here, in 10M-request runs: C=500 −0.0001 ± 0.0002, C=2000 +0.0003 ± 0.0002
ZIPF = {"popularity": "zipf", "catalog_size": 10_000, "exponent": 0.8}
WARMUP_REQUESTS = 100_000
MEASURED_REQUESTS = 300_000


def _cache(config: dict) -> ResultCache:
    return CACHE_POLICIES.build(TypeAdapter(CACHE_POLICIES.field()).validate_python(config))


def _popularity(config: dict, base_dir: Path = Path(".")) -> KeyPopularity:
    return KEY_POPULARITY.build(TypeAdapter(KEY_POPULARITY.field()).validate_python(config), base_dir)


def _serve(cache: ResultCache, keys, times_ms) -> None:
    """Look every key up; a miss inserts it, as the serving model does once the result is computed."""
    lookup, insert = cache.lookup, cache.insert
    for key, now_ms in zip(keys, times_ms):
        if not lookup(key, now_ms):
            insert(key, now_ms)


def _hit_ratio(cache: ResultCache, keys: list[int], warmup: int, times_ms=None) -> tuple[float, float]:
    """Hit ratio over ``keys[warmup:]`` and 4 binomial standard errors of it."""
    times_ms = np.zeros(len(keys)) if times_ms is None else times_ms
    _serve(cache, keys[:warmup], times_ms[:warmup])
    hits_before = cache.hits
    _serve(cache, keys[warmup:], times_ms[warmup:])
    measured = len(keys) - warmup
    hit_ratio = (cache.hits - hits_before) / measured
    return hit_ratio, 4 * np.sqrt(hit_ratio * (1 - hit_ratio) / measured)


def _zipf_keys(count: int, seed: int = 1) -> tuple[list[int], np.ndarray]:
    popularity = _popularity(ZIPF)
    return list(islice(popularity.keys(stream(seed, 0, "keys")), count)), popularity.probabilities()


# -- policy mechanics ---------------------------------------------------------------------------


def test_lru_evicts_the_least_recently_used():
    cache = _cache({"policy": "lru", "capacity_entries": 2})
    cache.insert(1, 0.0)
    cache.insert(2, 0.0)
    assert cache.lookup(1, 0.0)
    cache.insert(3, 0.0)
    assert not cache.lookup(2, 0.0)
    assert cache.lookup(1, 0.0) and cache.lookup(3, 0.0)
    assert (cache.hits, cache.misses, cache.evictions, len(cache)) == (3, 1, 1, 2)


def test_lfu_evicts_the_least_used_and_breaks_ties_by_recency():
    cache = _cache({"policy": "lfu", "capacity_entries": 3})
    for key in (1, 2, 3):
        cache.insert(key, 0.0)
    for key in (1, 1, 2):
        assert cache.lookup(key, 0.0)
    cache.insert(4, 0.0)  # uses: 1→3, 2→2, 3→1: key 3 goes
    assert not cache.lookup(3, 0.0)
    assert cache.lookup(4, 0.0)  # 4 now has 2 uses, like 2, but used more recently
    cache.insert(5, 0.0)
    assert not cache.lookup(2, 0.0)
    assert all(cache.lookup(key, 0.0) for key in (1, 4, 5))
    assert cache.evictions == 2 and len(cache) == 3


def test_ttl_entry_hits_before_expiry_and_misses_after():
    cache = _cache({"policy": "ttl", "capacity_entries": 10, "ttl_ms": 100.0})
    cache.insert(7, 50.0)
    assert cache.lookup(7, 50.0) and cache.lookup(7, 149.9)  # hits do not extend the lifetime
    assert not cache.lookup(7, 150.0)
    assert len(cache) == 0 and cache.expirations == 1
    cache.insert(7, 200.0)
    cache.insert(7, 250.0)  # a fresh result of a cached key starts a new lifetime
    assert cache.lookup(7, 349.0) and not cache.lookup(7, 350.0)
    assert (cache.hits, cache.misses, cache.evictions) == (3, 2, 0)


def test_ttl_full_cache_drops_expired_entries_before_evicting_live_ones():
    cache = _cache({"policy": "ttl", "capacity_entries": 2, "ttl_ms": 100.0})
    cache.insert(1, 0.0)
    cache.insert(2, 50.0)
    cache.insert(3, 60.0)  # full, nothing expired: the entry closest to expiry (1) is evicted
    assert not cache.lookup(1, 60.0) and cache.evictions == 1
    cache.insert(4, 155.0)  # 2 has expired at 150: it makes the room
    assert (cache.evictions, cache.expirations) == (1, 1)
    assert cache.lookup(3, 155.0) and cache.lookup(4, 155.0)


@pytest.mark.parametrize(
    "config",
    [
        {"policy": "lru", "capacity_entries": 50},
        {"policy": "lfu", "capacity_entries": 50},
        {"policy": "ttl", "capacity_entries": 50, "ttl_ms": 60.0},  # both evicts and expires
    ],
    ids=lambda config: config["policy"],
)
def test_capacity_bound_and_counters_are_consistent(config):
    cache = _cache(config)
    keys, _ = _zipf_keys(20_000, seed=2)
    lookups = 0
    for now_ms, key in enumerate(keys):
        lookups += 1
        if not cache.lookup(key, float(now_ms)):
            cache.insert(key, float(now_ms))
        assert len(cache) <= 50
    assert cache.hits + cache.misses == lookups
    # Every miss inserted one entry; entries leave only by eviction or expiry.
    assert cache.misses - cache.evictions - getattr(cache, "expirations", 0) == len(cache)
    assert cache.evictions > 0


# -- hit ratios against theory ------------------------------------------------------------------


@pytest.mark.parametrize("capacity", [500, 2000])
def test_lru_hit_ratio_matches_che(capacity):
    keys, p = _zipf_keys(WARMUP_REQUESTS + MEASURED_REQUESTS)
    assert WARMUP_REQUESTS > 5 * che_characteristic_time(p, capacity)  # LRU forgets its start
    measured, tolerance = _hit_ratio(_cache({"policy": "lru", "capacity_entries": capacity}), keys, WARMUP_REQUESTS)
    assert measured == pytest.approx(che_lru_hit_ratio(p, capacity), abs=tolerance + LRU_CHE_BIAS)


def test_lfu_beats_lru_on_static_zipf_but_not_the_perfect_lfu_limit():
    """In-cache LFU keeps popular keys better than LRU; it cannot beat knowing the top C keys."""
    keys, p = _zipf_keys(WARMUP_REQUESTS + MEASURED_REQUESTS)
    lru, lru_tolerance = _hit_ratio(_cache({"policy": "lru", "capacity_entries": 500}), keys, WARMUP_REQUESTS)
    lfu, lfu_tolerance = _hit_ratio(_cache({"policy": "lfu", "capacity_entries": 500}), keys, WARMUP_REQUESTS)
    assert lfu > lru + lru_tolerance + lfu_tolerance
    assert lfu <= lfu_static_hit_ratio(p, 500) + lfu_tolerance


def test_ttl_hit_ratio_matches_theory_under_poisson_requests():
    rate_per_ms, ttl_ms = 1.0, 1000.0
    keys, p = _zipf_keys(MEASURED_REQUESTS + 10_000)
    times_ms = np.cumsum(stream(1, 0, "arrivals").exponential(1 / rate_per_ms, len(keys)))
    cache = _cache({"policy": "ttl", "capacity_entries": ZIPF["catalog_size"], "ttl_ms": ttl_ms})
    measured, tolerance = _hit_ratio(cache, keys, 10_000, times_ms)  # warm-up: 10 lifetimes
    assert cache.evictions == 0  # the capacity never binds, as the formula assumes
    assert measured == pytest.approx(ttl_hit_ratio(p, rate_per_ms, ttl_ms), abs=tolerance)


def test_cache_theory_limits():
    p = np.array([0.5, 0.3, 0.2])
    assert lfu_static_hit_ratio(p, 2) == pytest.approx(0.8)
    assert lfu_static_hit_ratio(p, 5) == pytest.approx(1.0)
    # λ_i T = 1 for every key: each key hits once per lifetime, half of its requests.
    assert ttl_hit_ratio(np.ones(4), rate_per_ms=4.0, ttl_ms=1.0) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="capacity"):
        lfu_static_hit_ratio(p, 0)
    with pytest.raises(ValueError, match="ttl_ms"):
        ttl_hit_ratio(p, 1.0, 0.0)


# -- key popularity ------------------------------------------------------------------------------


def test_zipf_top_ranks_follow_their_probabilities():
    keys, p = _zipf_keys(200_000, seed=3)
    counts = np.bincount(keys, minlength=len(p))
    top = 30
    observed = np.append(counts[:top], counts[top:].sum())
    expected = np.append(p[:top], p[top:].sum()) * len(keys)
    assert scipy.stats.chisquare(observed, expected).pvalue > 0.001
    assert np.all(np.diff(p) <= 0) and p[0] / p[9] == pytest.approx(10**0.8)


def test_uniform_keys_cover_the_catalog_evenly():
    popularity = _popularity({"popularity": "uniform", "catalog_size": 20})
    counts = np.bincount(list(islice(popularity.keys(stream(1, 0, "keys")), 40_000)), minlength=20)
    assert len(counts) == 20 and popularity.catalog_size == 20
    assert scipy.stats.chisquare(counts).pvalue > 0.001
    assert np.allclose(popularity.probabilities(), 1 / 20)


def test_trace_keys_replay_in_order_and_cycle(tmp_path):
    pd.DataFrame({"user": [5, 3, 5, 0]}).to_csv(tmp_path / "keys.csv", index=False)
    popularity = _popularity({"popularity": "trace", "file": "keys.csv"}, tmp_path)
    assert list(islice(popularity.keys(stream(1, 0, "keys")), 10)) == [5, 3, 5, 0, 5, 3, 5, 0, 5, 3]
    assert popularity.catalog_size == 6
    np.testing.assert_allclose(popularity.probabilities(), [0.25, 0, 0, 0.25, 0, 0.5])


@pytest.mark.parametrize("values", [[1, -2], [1, 2.5]])
def test_trace_rejects_keys_that_are_not_non_negative_integers(tmp_path, values):
    pd.DataFrame({"key": values}).to_csv(tmp_path / "keys.csv", index=False)
    with pytest.raises(ScenarioError, match=r"keys\.csv.*(must lie in \[0, |must hold integer keys)"):
        _popularity({"popularity": "trace", "file": "keys.csv"}, tmp_path)


# -- validation ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"policy": "lru", "capacity_entries": 0}, "capacity_entries\n  Input should be greater than or equal to 1"),
        ({"policy": "ttl", "capacity_entries": 10}, "ttl_ms\n  Field required"),
        ({"policy": "lru", "capacity_entries": 10, "ttl_ms": 5}, "ttl_ms\n  Extra inputs are not permitted"),
        ({"policy": "fifo", "capacity_entries": 10}, "unknown cache policy 'fifo'; policy must be one of lfu, lru, ttl"),
    ],
)
def test_bad_cache_config_fails_with_a_clear_message(config, message):
    with pytest.raises(ValidationError, match=message):
        _cache(config)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({**ZIPF, "exponent": -0.5}, "exponent\n  Input should be greater than or equal to 0"),
        ({**ZIPF, "catalog_size": 0}, "catalog_size\n  Input should be greater than or equal to 1"),
        ({"popularity": "pareto", "catalog_size": 10}, "unknown key popularity 'pareto'; popularity must be one of trace, uniform, zipf"),
    ],
)
def test_bad_popularity_config_fails_with_a_clear_message(config, message):
    with pytest.raises(ValidationError, match=message):
        _popularity(config)


# -- the cache inside the simulated cluster ------------------------------------------------------
# These runs use the engine's own confidence intervals at 99.9 % (Student t over replications);
# Che's bias for these workloads (< 0.001) is far inside them.

CATALOG, EXPONENT, RATE_PER_S = 10_000, 0.8, 80.0


def _cached_scenario(policy: dict, scope: str = "shared", replications: int = 6) -> dict:
    data = base_scenario()
    data["run"].update(requests=40_000, warmup_requests=10_000, replications=replications, confidence=0.999)
    data["workload"]["arrival"]["rate_per_s"] = RATE_PER_S
    data["workload"]["keys"] = {"popularity": "zipf", "catalog_size": CATALOG, "exponent": EXPONENT}
    data["nodes"][0]["service"] = {"distribution": "deterministic", "value_ms": 1.0}
    data["cache"] = {"scope": scope, "policy": policy, "hit_latency": {"distribution": "deterministic", "value_ms": 0.25}}
    return data


def _simulated_hit_ratio(data: dict, **kwargs):
    result = run(scenario_from_dict(data), jobs=2, **kwargs)
    estimate = result.estimate("cache_hit_ratio")
    assert estimate.ci_high - estimate.ci_low < 0.05  # narrow enough to be a test
    return estimate, result


def test_simulated_lru_hit_ratio_matches_che():
    estimate, _ = _simulated_hit_ratio(_cached_scenario({"policy": "lru", "capacity_entries": 500}))
    theory = che_lru_hit_ratio(zipf_popularity(CATALOG, EXPONENT), 500)
    assert estimate.ci_low <= theory <= estimate.ci_high


def test_simulated_lfu_beats_lru_at_the_same_capacity():
    lru, _ = _simulated_hit_ratio(_cached_scenario({"policy": "lru", "capacity_entries": 500}))
    lfu, _ = _simulated_hit_ratio(_cached_scenario({"policy": "lfu", "capacity_entries": 500}))
    assert lfu.ci_low > lru.ci_high


def test_simulated_ttl_hit_ratio_matches_theory():
    estimate, _ = _simulated_hit_ratio(_cached_scenario({"policy": "ttl", "capacity_entries": CATALOG, "ttl_ms": 2000}))
    theory = ttl_hit_ratio(zipf_popularity(CATALOG, EXPONENT), RATE_PER_S / 1000, 2000)
    assert estimate.ci_low <= theory <= estimate.ci_high


@pytest.mark.parametrize("scope", ["shared", "per_node"])
def test_hits_skip_the_model_and_misses_fill_the_cache(tmp_path, scope):
    data = _cached_scenario({"policy": "lru", "capacity_entries": 200}, scope=scope, replications=2)
    data["nodes"][0]["replicas"] = 2
    data["run"]["warmup_requests"] = 0  # records then hold every request, each key's first included
    path = tmp_path / "requests.parquet"
    result = run(scenario_from_dict(data), records_path=path)
    records = pd.read_parquet(path)
    hits, misses = records[records["cache_hit"]], records[~records["cache_hit"]]
    assert len(hits) > 0 and (hits["latency_ms"] == 0.25).all() and (hits["cache_ms"] == 0.25).all()
    assert (hits["service_ms"] == 0).all() and (misses["service_ms"] == 1.0).all()
    if scope == "shared":
        assert (hits["node"] == "").all()  # answered in front of the routers
    else:
        assert set(hits["node"]) == {"n-0", "n-1"}
    served_by_nodes = sum(node["served"] for node in result.summary["nodes"].values())
    assert served_by_nodes == len(misses) == result.summary["classes"]["all"]["completed"] - len(hits)
    first_requests = records.sort_values("arrival_ms").groupby(["replication", "key"]).head(1)
    assert not first_requests["cache_hit"].any()  # nothing is cached before it was computed once


def test_cache_hit_ratio_over_time(tmp_path):
    data = _cached_scenario({"policy": "lru", "capacity_entries": 500}, replications=1)
    data["run"]["warmup_requests"] = 0  # the series then covers exactly the measured requests
    result = run(scenario_from_dict(data), monitor=True)
    series = result.timeseries
    assert "cache_hit_ratio" in series.columns
    hits = (series["cache_hit_ratio"] * series["arrivals"]).sum()
    assert hits == pytest.approx(result.estimate("cache_hit_ratio").estimate * series["arrivals"].sum())


def test_a_cache_needs_request_keys():
    data = _cached_scenario({"policy": "lru", "capacity_entries": 10})
    del data["workload"]["keys"]
    with pytest.raises(ScenarioError, match=r"cache: a result cache needs request keys; add workload.keys"):
        scenario_from_dict(data)
