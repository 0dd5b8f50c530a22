"""The simulator against queueing theory, case by case (in the spirit of Ciw's test suite).

Every case runs with a fixed seed and ``confidence: 0.999``: the exact theoretical value must
lie inside the simulation's own 99.9 % confidence interval (Student t over independent
replications; nothing is widened after the fact), and that interval must be narrow (half-width
under ``PRECISION`` of the value) so that no case can pass vacuously. With a correct engine each
comparison fails with probability about 0.001; with fixed seeds the outcome is deterministic.

Loads stay at ρ = 0.6–0.8 so that the replication means converge well within the budget. Every
case the fast engine serves runs on both engines (``engine`` fixture).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from simulator import run, scenario_from_dict
from simulator.analytic import (
    erlang_b,
    mg1_ps_mean_sojourn_ms,
    mmc_fifo_mean_waits_ms,
    preemptive_priority_mg1_mean_sojourns_ms,
    erlang_c,
    mg1_mean_wait_ms,
    mmc_mean_queue_length,
    mmc_mean_wait_ms,
    mmc_priority_mean_waits_ms,
    mmc_utilization,
    mmc_wait_tail,
    priority_mg1_mean_waits_ms,
)
from simulator.metrics.summary import Estimate

CONFIDENCE = 0.999
PRECISION = 0.05  # largest CI half-width, relative to the value, that makes a comparison meaningful
JOBS = 2
MEAN_MS = 10.0


def expon(mean_ms: float) -> dict:
    return {"distribution": "scipy", "name": "expon", "params": {"scale": mean_ms}}


def deterministic(value_ms: float) -> dict:
    return {"distribution": "deterministic", "value_ms": value_ms}


def lognormal(mean_ms: float, s: float) -> dict:
    """A lognormal service time with the given mean and shape s (σ of the underlying normal)."""
    return {"distribution": "scipy", "name": "lognorm", "params": {"s": s, "scale": mean_ms * math.exp(-(s**2) / 2)}}


def moments(service: dict) -> tuple[float, float]:
    """E[S] and E[S²] (ms, ms²) of a service spec, computed here independently of the engine."""
    if service["distribution"] == "deterministic":
        return service["value_ms"], service["value_ms"] ** 2
    frozen = getattr(scipy.stats, service["name"])(**service["params"])
    return float(frozen.mean()), float(frozen.moment(2))


def scenario(
    name: str,
    rate_per_s: float,
    service: dict,
    *,
    workers: int = 1,
    classes: list[dict] | None = None,
    discipline: str = "fifo",
    queue_capacity: int | None = None,
    requests: int = 30_000,
    replications: int = 20,
    seed: int = 1,
) -> dict:
    return {
        "name": name,
        "run": {
            "requests": requests,
            "warmup_requests": 2_000,
            "replications": replications,
            "seed": seed,
            "confidence": CONFIDENCE,
        },
        "workload": {
            "arrival": {"process": "poisson", "rate_per_s": rate_per_s},
            "classes": classes or [{"name": "a", "deadline_ms": 1e9, "kind": "soft", "target": 0.5}],
        },
        "nodes": [
            {
                "name": "n",
                "workers": workers,
                "discipline": {"policy": discipline},
                "queue_capacity": queue_capacity,
                "service": service,
            }
        ],
    }


def simulate(data: dict, records_path: Path | None = None, engine: str = "simpy"):
    return run(scenario_from_dict(data), jobs=JOBS, records_path=records_path, engine=engine)


@pytest.fixture(params=["simpy", "fast"])
def engine(request) -> str:
    """The engine a case runs on: every case the fast engine serves runs on both (the same seed gives the same numbers)."""
    return request.param


def t_interval(values: list[float]) -> Estimate:
    """Student t interval over independent replication estimates (computed here, not by the engine)."""
    values = np.asarray(values, dtype=float)
    half = scipy.stats.t.ppf(0.5 + CONFIDENCE / 2, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values))
    return Estimate(float(values.mean()), float(values.mean() - half), float(values.mean() + half))


class Comparison:
    """Collects theory-vs-simulation checks of one case, then reports every mismatch at once."""

    def __init__(self, case: str) -> None:
        self.case = case
        self.problems: list[str] = []

    def check(self, what: str, simulated: Estimate, theory: float, precision: float = PRECISION) -> None:
        low, high = simulated.ci_low, simulated.ci_high
        line = f"{self.case:<22} {what:<26} sim {simulated.estimate:10.5g} [{low:.5g}, {high:.5g}]  theory {theory:.5g}"
        print(line)
        if not low <= theory <= high:
            self.problems.append(f"theory outside the {CONFIDENCE:.1%} CI: {line}")
        half_width = (high - low) / 2
        if not half_width < precision * abs(theory):
            self.problems.append(f"CI too wide to be a test (half-width {half_width:.3g} ≥ {precision:.0%}): {line}")

    def verify(self) -> None:
        assert not self.problems, "\n".join(self.problems)


# -- single-class FIFO queues ---------------------------------------------------------------------


def test_mm1(engine):
    rate_per_s, mu = 60.0, 1 / MEAN_MS
    result = simulate(scenario("mm1", rate_per_s, expon(MEAN_MS), requests=50_000), engine=engine)
    lam = rate_per_s / 1000
    wait = mmc_mean_wait_ms(1, lam, mu)
    case = Comparison("M/M/1 ρ=0.6")
    case.check("wait_ms.mean", result.estimate("wait_ms.mean"), wait)
    case.check("latency_ms.mean", result.estimate("latency_ms.mean"), wait + MEAN_MS)
    case.check("utilization", result.node_estimate("utilization", "n"), mmc_utilization(1, lam, mu))
    case.check("mean_queue_length", result.node_estimate("mean_queue_length", "n"), mmc_mean_queue_length(1, lam, mu))
    case.check("throughput_per_s", result.estimate("throughput_per_s"), rate_per_s)
    for name, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99)):  # the sojourn time is Exp(μ − λ)
        case.check(f"latency_ms.{name}", result.estimate(f"latency_ms.{name}"), -math.log1p(-q) / (mu - lam))
    case.verify()


def test_mm1_single_replication_batch_means(engine):
    """One long replication: mean-type intervals come from batch means instead of replications."""
    rate_per_s, mu = 60.0, 1 / MEAN_MS
    data = scenario("mm1-batch-means", rate_per_s, expon(MEAN_MS), requests=600_000, replications=1, seed=5)
    result = simulate(data, engine=engine)
    assert result.summary["ci_method"] == "batch_means"
    wait = mmc_mean_wait_ms(1, rate_per_s / 1000, mu)
    case = Comparison("M/M/1 batch means")
    case.check("wait_ms.mean", result.estimate("wait_ms.mean"), wait)
    case.check("latency_ms.mean", result.estimate("latency_ms.mean"), wait + MEAN_MS)
    case.verify()


def test_mmc(tmp_path, engine):
    c, lam, mu = 3, 0.21, 1 / MEAN_MS
    path = tmp_path / "mmc.parquet"
    result = simulate(scenario("mmc", lam * 1000, expon(MEAN_MS), workers=c, requests=60_000), records_path=path, engine=engine)
    records = pd.read_parquet(path, columns=["replication", "wait_ms", "dropped", "measured"])
    records = records[records["measured"]]
    assert (records["dropped"] == "").all() and records["wait_ms"].notna().all()
    per_replication = records.groupby("replication")["wait_ms"]
    case = Comparison("M/M/3 ρ=0.7")
    case.check("wait_ms.mean", result.estimate("wait_ms.mean"), mmc_mean_wait_ms(c, lam, mu))
    case.check("P(W>0) = Erlang C", t_interval(per_replication.apply(lambda w: float((w > 0).mean())).tolist()), erlang_c(c, lam / mu))
    case.check("wait_probability (summary)", result.estimate("wait_probability"), erlang_c(c, lam / mu))
    for t_ms in (2.0, 10.0):
        fractions = per_replication.apply(lambda w: float((w > t_ms).mean())).tolist()
        case.check(f"P(W>{t_ms:g} ms)", t_interval(fractions), mmc_wait_tail(c, lam, mu, t_ms))
    case.check("utilization", result.node_estimate("utilization", "n"), mmc_utilization(c, lam, mu))
    case.check("mean_queue_length", result.node_estimate("mean_queue_length", "n"), mmc_mean_queue_length(c, lam, mu))
    case.check("latency_ms.mean", result.estimate("latency_ms.mean"), mmc_mean_wait_ms(c, lam, mu) + MEAN_MS)
    probability, rate = erlang_c(c, lam / mu), c * mu - lam
    for name, q in (("p90", 0.9), ("p99", 0.99)):  # P(W > t) = C e^(−(cμ − λ) t) above the atom at 0
        case.check(f"wait_ms.{name}", result.estimate(f"wait_ms.{name}"), math.log(probability / (1 - q)) / rate)
    # the record-level mean wait agrees with the summary's (same requests, pooled)
    assert records["wait_ms"].mean() == pytest.approx(result.estimate("wait_ms.mean").estimate)
    case.verify()


@pytest.mark.parametrize(
    "label, service, rate_per_s",
    [
        ("M/D/1 ρ=0.7", deterministic(MEAN_MS), 70.0),
        ("M/G/1 lognorm s=0.8", lognormal(MEAN_MS, 0.8), 65.0),
    ],
)
def test_mg1_pollaczek_khinchine(label, service, rate_per_s, engine):
    result = simulate(scenario("mg1", rate_per_s, service), engine=engine)
    mean_ms, second_ms2 = moments(service)
    assert mean_ms == pytest.approx(MEAN_MS)
    wait = mg1_mean_wait_ms(rate_per_s / 1000, mean_ms, second_ms2)
    case = Comparison(label)
    case.check("wait_ms.mean", result.estimate("wait_ms.mean"), wait)
    case.check("latency_ms.mean", result.estimate("latency_ms.mean"), wait + mean_ms)
    case.check("service_ms.mean", result.estimate("service_ms.mean"), mean_ms, precision=0.01)
    case.check("utilization", result.node_estimate("utilization", "n"), rate_per_s / 1000 * mean_ms)
    case.verify()


# -- non-preemptive priority ----------------------------------------------------------------------


def _priority_classes(services: list[dict], shares: list[float]) -> list[dict]:
    return [
        {"name": f"p{k}", "priority": k, "share": share, "deadline_ms": 1e9, "kind": "soft", "target": 0.5, "service": service}
        for k, (service, share) in enumerate(zip(services, shares))
    ]


@pytest.mark.parametrize(
    "label, services, shares, rate_per_s",
    [
        ("prio M/G/1 2 classes", [deterministic(5.0), lognormal(10.0, 0.8)], [0.4, 0.6], 87.5),
        ("prio M/G/1 3 classes", [deterministic(4.0), expon(8.0), lognormal(12.0, 0.6)], [0.2, 0.5, 0.3], 83.0),
    ],
)
def test_priority_mg1_cobham(label, services, shares, rate_per_s, engine):
    classes = _priority_classes(services, shares)
    # the node's own service model is overridden by every class
    result = simulate(scenario("prio", rate_per_s, expon(1000.0), classes=classes, discipline="priority", requests=50_000), engine=engine)
    rates = [rate_per_s / 1000 * share / sum(shares) for share in shares]
    means, seconds = zip(*map(moments, services))
    waits = priority_mg1_mean_waits_ms(rates, means, seconds)
    case = Comparison(label)
    for cls, wait in zip(classes, waits):
        case.check(f"{cls['name']} wait_ms.mean", result.estimate("wait_ms.mean", cls=cls["name"]), wait)
    overall = float(np.dot(rates, waits)) / sum(rates)
    case.check("all wait_ms.mean", result.estimate("wait_ms.mean"), overall)
    case.check("utilization", result.node_estimate("utilization", "n"), float(np.dot(rates, means)))
    case.verify()


@pytest.mark.parametrize(
    "label, services, shares, rate_per_s",
    [
        ("preempt M/G/1 2 classes", [expon(5.0), lognormal(10.0, 0.8)], [0.4, 0.6], 75.0),
        ("preempt M/G/1 3 classes", [deterministic(4.0), expon(8.0), lognormal(12.0, 0.6)], [0.2, 0.5, 0.3], 75.0),
    ],
)
def test_preemptive_resume_priority_mg1(label, services, shares, rate_per_s):
    """Mean sojourn per class of preemptive-resume priority M/G/1 (Kleinrock Vol. 2; Harchol-Balter ch. 32)."""
    classes = _priority_classes(services, shares)
    data = scenario("preempt", rate_per_s, expon(1000.0), classes=classes, discipline="preemptive_priority", requests=50_000)
    result = simulate(data)
    rates = [rate_per_s / 1000 * share / sum(shares) for share in shares]
    means, seconds = zip(*map(moments, services))
    sojourns = preemptive_priority_mg1_mean_sojourns_ms(rates, means, seconds)
    case = Comparison(label)
    for cls, sojourn in zip(classes, sojourns):
        case.check(f"{cls['name']} latency_ms.mean", result.estimate("latency_ms.mean", cls=cls["name"]), sojourn)
    for cls, mean in zip(classes, means):  # resume: every request gets exactly its own service, in pieces
        case.check(f"{cls['name']} service_ms.mean", result.estimate("service_ms.mean", cls=cls["name"]), mean)
    case.check("utilization", result.node_estimate("utilization", "n"), float(np.dot(rates, means)))
    case.verify()


def test_preemptive_repeat_runs_the_same_service_again():
    """Repeat mode: an interrupted request starts its (same) service over; deterministic service shows it exactly."""
    classes = _priority_classes([deterministic(2.0), deterministic(10.0)], [0.3, 0.7])
    data = scenario("repeat", 60.0, expon(1000.0), classes=classes, discipline="preemptive_priority", requests=10_000,
                    replications=2)
    data["nodes"][0]["discipline"]["mode"] = "repeat"
    result = simulate(data)
    low = result.summary["classes"]["p1"]
    assert low["service_ms"]["mean"]["estimate"] > 10.0  # work lost to interruptions is done again
    assert result.summary["classes"]["p0"]["service_ms"]["mean"]["estimate"] == pytest.approx(2.0)


@pytest.mark.parametrize(
    "label, service",
    [("M/M/1-PS", expon(MEAN_MS)), ("M/D/1-PS", deterministic(MEAN_MS)), ("M/G/1-PS lognorm", lognormal(MEAN_MS, 1.0))],
)
def test_processor_sharing_device_is_mg1_ps_and_insensitive(label, service):
    """A device shared by every call in progress (f(k) = k, unlimited workers) is M/G/1-PS: E[T] = E[S]/(1 − ρ)."""
    rate_per_s = 60.0
    data = scenario("ps", rate_per_s, service, workers=10_000, requests=40_000)
    data["nodes"][0]["device"] = {"concurrency_slowdown": "processor_sharing"}
    result = simulate(data)
    case = Comparison(label)
    case.check("latency_ms.mean", result.estimate("latency_ms.mean"), mg1_ps_mean_sojourn_ms(rate_per_s / 1000, MEAN_MS))
    case.verify()
    assert result.summary["offered_load"] == pytest.approx(0.6)  # the device is one server's worth, whatever the workers


@pytest.mark.parametrize("discipline", ["fifo", "priority"])
def test_mmc_with_a_poisson_stream_per_class(discipline, engine):
    """Two classes, each its own Poisson process (not shares of one): FIFO waits are Erlang C's, priority Cobham's."""
    c, mu = 2, 1 / MEAN_MS
    class_rates_per_s = [50.0, 90.0]
    data = scenario("per-class", 1.0, expon(MEAN_MS), workers=c, discipline=discipline, requests=60_000)
    data["workload"].pop("arrival")
    data["workload"]["classes"] = [
        {"name": f"p{k}", "priority": k, "deadline_ms": 1e9, "kind": "soft", "target": 0.5,
         "arrival": {"process": "poisson", "rate_per_s": rate}}
        for k, rate in enumerate(class_rates_per_s)
    ]
    result = simulate(data, engine=engine)
    rates = [rate / 1000 for rate in class_rates_per_s]
    waits = mmc_fifo_mean_waits_ms(c, rates, mu) if discipline == "fifo" else mmc_priority_mean_waits_ms(c, rates, mu)
    case = Comparison(f"M/M/2 per-class {discipline}")
    for k, wait in enumerate(waits):
        case.check(f"p{k} wait_ms.mean", result.estimate("wait_ms.mean", cls=f"p{k}"), wait)
        case.check(f"p{k} throughput_per_s", result.estimate("throughput_per_s", cls=f"p{k}"), class_rates_per_s[k])
    case.verify()


def test_priority_mmc_equal_service_rates(engine):
    c, rate_per_s, mu = 2, 140.0, 1 / MEAN_MS
    classes = _priority_classes([expon(MEAN_MS)] * 2, [0.5, 0.5])
    result = simulate(scenario("prio-mmc", rate_per_s, expon(MEAN_MS), workers=c, classes=classes, discipline="priority"), engine=engine)
    waits = mmc_priority_mean_waits_ms(c, [rate_per_s / 2000] * 2, mu)
    case = Comparison("prio M/M/2 2 classes")
    for cls, wait in zip(classes, waits):
        case.check(f"{cls['name']} wait_ms.mean", result.estimate("wait_ms.mean", cls=cls["name"]), wait)
    case.check("all wait_ms.mean", result.estimate("wait_ms.mean"), mmc_mean_wait_ms(c, rate_per_s / 1000, mu))
    case.verify()


# -- loss systems ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "label, service", [("M/M/5/5 a=4", expon(MEAN_MS)), ("M/G/5/5 lognorm a=4", lognormal(MEAN_MS, 1.0))]
)
def test_erlang_b_loss_system(label, service, engine):
    """Blocking = Erlang B, whatever the service distribution (insensitivity)."""
    c, rate_per_s = 5, 400.0
    result = simulate(scenario("loss", rate_per_s, service, workers=c, queue_capacity=0, requests=15_000), engine=engine)
    blocking = erlang_b(c, rate_per_s / 1000 * MEAN_MS)
    assert set(result.summary["classes"]["all"]["dropped"]) <= {"queue_full"}
    case = Comparison(label)
    case.check("blocked fraction", result.estimate("drop_ratio"), blocking)
    case.check("1 − deadline_met_ratio", _complement(result.estimate("deadline_met_ratio")), blocking)
    case.check("throughput_per_s", result.estimate("throughput_per_s"), rate_per_s * (1 - blocking))
    case.check("utilization", result.node_estimate("utilization", "n"), rate_per_s / 1000 * MEAN_MS * (1 - blocking) / c)
    assert result.estimate("wait_ms.max").estimate == 0.0  # nobody ever waits in a loss system
    case.verify()


def _complement(estimate: Estimate) -> Estimate:
    return Estimate(1 - estimate.estimate, 1 - estimate.ci_high, 1 - estimate.ci_low)


# -- reproducibility ------------------------------------------------------------------------------


def _small_priority_scenario(seed: int) -> dict:
    classes = _priority_classes([deterministic(5.0), lognormal(10.0, 0.8)], [0.4, 0.6])
    return scenario("repro", 87.5, expon(10.0), workers=1, classes=classes, discipline="priority",
                    requests=10_000, replications=3, seed=seed)


def test_same_seed_same_summary_whatever_the_jobs(engine):
    loaded = scenario_from_dict(_small_priority_scenario(seed=11))
    serial = run(loaded, jobs=1, engine=engine).to_json()
    assert run(loaded, jobs=1, engine=engine).to_json() == serial
    assert run(loaded, jobs=2, engine=engine).to_json() == serial


def test_different_seed_different_numbers(engine):
    first = run(scenario_from_dict(_small_priority_scenario(seed=11)), jobs=JOBS, engine=engine)
    second = run(scenario_from_dict(_small_priority_scenario(seed=12)), jobs=JOBS, engine=engine)
    for metric in ("wait_ms.mean", "latency_ms.p99", "throughput_per_s"):
        assert first.estimate(metric).estimate != second.estimate(metric).estimate, metric


# -- tandem queues (a model-parallel pipeline) -----------------------------------------------------


def test_pipeline_of_two_mm1_stages_is_a_jackson_tandem():
    """By Burke's theorem each stage of a tandem of M/M/1 queues is M/M/1 with the same λ; a
    constant transfer delay between them shifts the departures and keeps them Poisson."""
    rate_per_s, front_ms, back_ms, transfer_ms = 60.0, 6.0, 10.0, 2.0
    data = scenario("tandem", rate_per_s, expon(front_ms), requests=30_000)
    data["nodes"] = [
        {"name": "front", "service": expon(front_ms)},
        {"name": "back", "service": expon(back_ms)},
    ]
    data["pipeline"] = {"stages": ["front", "back"], "transfer": deterministic(transfer_ms)}
    result = simulate(data)
    lam = rate_per_s / 1000
    waits = [mmc_mean_wait_ms(1, lam, 1 / front_ms), mmc_mean_wait_ms(1, lam, 1 / back_ms)]
    case = Comparison("tandem M/M/1 → M/M/1")
    case.check("wait_ms.mean (both stages)", result.estimate("wait_ms.mean"), sum(waits))
    case.check("service_ms.mean (both)", result.estimate("service_ms.mean"), front_ms + back_ms, precision=0.01)
    case.check("latency_ms.mean", result.estimate("latency_ms.mean"), sum(waits) + front_ms + back_ms + transfer_ms)
    case.check("utilization front", result.node_estimate("utilization", "front"), lam * front_ms)
    case.check("utilization back", result.node_estimate("utilization", "back"), lam * back_ms)
    case.verify()
    assert result.summary["offered_load"] == pytest.approx(lam * back_ms)  # the busiest stage decides
