"""Queueing theory in closed form: instant first answers and cross-checks of the simulation.

Times are in ms and rates per ms throughout (divide a per-second rate by 1000).
"""

from simulator.analytic.caching import (
    che_characteristic_time,
    che_lru_hit_ratio,
    lfu_static_hit_ratio,
    ttl_hit_ratio,
    zipf_popularity,
)
from simulator.analytic.queueing import (
    allen_cunneen_mean_wait_ms,
    erlang_b,
    erlang_c,
    kingman_mean_wait_ms,
    mg1_mean_wait_ms,
    mm1_mean_wait_ms,
    mmc_mean_queue_length,
    mmc_mean_wait_ms,
    mmc_priority_mean_waits_ms,
    mmc_utilization,
    mmc_wait_tail,
    priority_mg1_mean_waits_ms,
)

__all__ = [
    "allen_cunneen_mean_wait_ms",
    "che_characteristic_time",
    "che_lru_hit_ratio",
    "erlang_b",
    "erlang_c",
    "kingman_mean_wait_ms",
    "lfu_static_hit_ratio",
    "mg1_mean_wait_ms",
    "mm1_mean_wait_ms",
    "mmc_mean_queue_length",
    "mmc_mean_wait_ms",
    "mmc_priority_mean_waits_ms",
    "mmc_utilization",
    "mmc_wait_tail",
    "priority_mg1_mean_waits_ms",
    "ttl_hit_ratio",
    "zipf_popularity",
]
