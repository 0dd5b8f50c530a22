"""Queueing theory in closed form: instant first answers and cross-checks of the simulation.

Times are in ms and rates per ms throughout (divide a per-second rate by 1000). One concept per
module: ``queueing`` (M/M/c, M/G/1), ``priority`` (several classes), ``approximations`` (G/G/c
approximations and bounds), ``loss`` (Erlang B, Engset), ``finite_queue`` (M/M/c/K), ``processor_sharing`` (M/G/1-PS),
``networks`` (Jackson networks, tandems), ``caching`` (hit ratios), ``renewal_queue`` (GI/M/1); all re-exported here.
Only numpy is imported eagerly; scipy is imported by the few functions that solve for a root.
"""

from simulator.analytic.approximations import (
    allen_cunneen_mean_wait_ms,
    kingman_gg1_wait_upper_bound_ms,
    kingman_mean_wait_ms,
    lee_longton_mean_wait_ms,
)
from simulator.analytic.caching import (
    che_characteristic_time,
    che_lru_hit_ratio,
    lfu_static_hit_ratio,
    ttl_hit_ratio,
    zipf_popularity,
)
from simulator.analytic.finite_queue import MMcK, mmck
from simulator.analytic.loss import (
    engset_call_congestion,
    engset_time_congestion,
    erlang_b,
)
from simulator.analytic.networks import (
    JacksonNetwork,
    jackson_network,
    tandem_mmc_mean_sojourn_ms,
)
from simulator.analytic.priority import (
    mmc_fifo_mean_waits_ms,
    mmc_priority_mean_waits_ms,
    preemptive_priority_mg1_mean_sojourns_ms,
    priority_mg1_mean_waits_ms,
)
from simulator.analytic.processor_sharing import (
    mg1_ps_mean_sojourn_ms,
    mg1_ps_sojourn_given_size_ms,
)
from simulator.analytic.renewal_queue import (
    GIM1,
    GapTransform,
    deterministic_gaps,
    gamma_gaps,
    gim1,
    hyperexponential_gaps,
    random_split_gaps,
    round_robin_gaps,
    scaled_gaps,
    uniform_gaps,
)
from simulator.analytic.queueing import (
    erlang_c,
    mg1_mean_queue_length,
    mg1_mean_wait_ms,
    mg1_sojourn_second_moment_ms2,
    mg1_wait_probability,
    mg1_wait_second_moment_ms2,
    mm1_mean_wait_ms,
    mmc_mean_queue_length,
    mmc_mean_sojourn_ms,
    mmc_mean_wait_ms,
    mmc_sojourn_quantile_ms,
    mmc_sojourn_tail,
    mmc_utilization,
    mmc_wait_probability,
    mmc_wait_quantile_ms,
    mmc_wait_tail,
)

__all__ = [
    "GIM1",
    "GapTransform",
    "MMcK",
    "deterministic_gaps",
    "gamma_gaps",
    "gim1",
    "hyperexponential_gaps",
    "random_split_gaps",
    "round_robin_gaps",
    "scaled_gaps",
    "uniform_gaps",
    "mmck",
    "JacksonNetwork",
    "allen_cunneen_mean_wait_ms",
    "che_characteristic_time",
    "che_lru_hit_ratio",
    "engset_call_congestion",
    "engset_time_congestion",
    "erlang_b",
    "erlang_c",
    "jackson_network",
    "kingman_gg1_wait_upper_bound_ms",
    "kingman_mean_wait_ms",
    "lee_longton_mean_wait_ms",
    "lfu_static_hit_ratio",
    "mg1_mean_queue_length",
    "mg1_mean_wait_ms",
    "mg1_ps_mean_sojourn_ms",
    "mg1_ps_sojourn_given_size_ms",
    "mg1_sojourn_second_moment_ms2",
    "mg1_wait_probability",
    "mg1_wait_second_moment_ms2",
    "mm1_mean_wait_ms",
    "mmc_fifo_mean_waits_ms",
    "mmc_mean_queue_length",
    "mmc_mean_sojourn_ms",
    "mmc_mean_wait_ms",
    "mmc_priority_mean_waits_ms",
    "mmc_sojourn_quantile_ms",
    "mmc_sojourn_tail",
    "mmc_utilization",
    "mmc_wait_probability",
    "mmc_wait_quantile_ms",
    "mmc_wait_tail",
    "preemptive_priority_mg1_mean_sojourns_ms",
    "priority_mg1_mean_waits_ms",
    "tandem_mmc_mean_sojourn_ms",
    "ttl_hit_ratio",
    "zipf_popularity",
]
