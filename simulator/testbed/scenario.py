"""Between latsim scenarios and the testbed: a scenario describes the server to measure, and every
measured run becomes scenarios latsim can run.

The scenario of a testbed is a plain one: a single node spec (one replica, no partitions, cache,
network, pipeline or events) whose service is a zoo model from a profile bundle (``distribution:
profile``, family and variant), with its workers, discipline, dynamic batching and classes.

Two predictions are written for every measured run (prediction (a) and (b) of ``compare``):

- **from the profile** — what a user has before deploying: Poisson arrivals at the run's rate, the
  closed-loop profile's service time per request (the worker's hand-off and busy time, see
  ``results.DERIVED_COLUMNS``) drawn i.i.d., and its time outside the queue and the worker
  (optionally with a calibration: overhead by occupancy, the machine's speed process and
  concurrency slowdown, the outside time measured under load);
- **from the run itself** — the times requests entered the server's queue (one trace per class),
  the service time of every call replayed in the order it happened, and the measured time outside
  the queue and the worker: it isolates the queueing model from the machine's drift and the
  inputs' errors.

The time outside the queue and the worker (``outside_ms``: the sender's lateness, the network both
ways, the server's event loop reading the request and writing the reply) goes on the network's
``response`` leg: it adds to latency without changing when requests reach the queue.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from simulator.errors import ScenarioError
from simulator.files import write_atomically, write_text_atomically
from simulator.scenario.schema import Scenario
from simulator.service.base import build_service_model
from simulator.testbed.config import TestbedConfig, refuse_unservable
from simulator.testbed.errors import TestbedError

SUPPORTED_DISCIPLINES = ("fifo", "priority", "edf")
WARMUP_FRACTION = 0.1  # of a run's requests, left out of measured and predicted statistics alike
MIN_TIME_MS = 1e-6  # measured times are clipped to this: a service or delay model takes positive times


def testbed_config(
    scenario: Scenario, intra_op_threads: int = 1, model_size: str = "standard", server: str = "aiohttp"
) -> TestbedConfig:
    """The testbed server a scenario describes, served by ``server`` (aiohttp or litserve; ``model_size`` tiny:
    the zoo's small test model); a clear error for anything that server cannot serve."""
    problems = []
    if len(scenario.nodes) != 1 or scenario.nodes[0].replicas != 1:
        problems.append("exactly one node spec with one replica")
    if scenario.partitioning.partitions != 1 or scenario.cache or scenario.network or scenario.pipeline or scenario.events:
        problems.append("no partitions, cache, network, pipeline or events")
    spec = scenario.nodes[0]
    service = spec.service
    if getattr(service, "distribution", None) != "profile":
        problems.append("a node service `distribution: profile` (it names the zoo model to serve, and its device)")
    if spec.discipline.policy not in SUPPORTED_DISCIPLINES:
        problems.append(f"discipline one of {', '.join(SUPPORTED_DISCIPLINES)}")
    if any(c.service is not None or c.arrival is not None for c in scenario.workload.classes):
        problems.append("classes without their own service or arrival process")
    if problems:
        raise TestbedError(f"{scenario.source}: a testbed serves scenarios with " + "; ".join(problems))
    batching = spec.batching
    config = TestbedConfig.parse(
        {
            "server": server,
            "model": {"family": service.family, "variant": service.variant, "size": model_size},
            "device": service.device,
            "workers": spec.workers,
            "intra_op_threads": intra_op_threads,
            "discipline": spec.discipline.policy,
            "batching": {} if batching is None else {
                "max_batch_size": batching.max_batch_size,
                "max_queue_delay_ms": batching.max_queue_delay_ms,
                "preferred_batch_sizes": list(batching.preferred_batch_sizes),
            },
            "classes": [
                {"name": c.name, "share": c.share, "priority": c.priority, "deadline_ms": c.deadline_ms}
                for c in scenario.workload.classes
            ],
        },
        origin=scenario.source,
    )
    refuse_unservable(config, str(scenario.source))
    return config


def _served(table: pd.DataFrame) -> pd.DataFrame:
    return table[(table["status"] == 200) & table["worker_busy_ms"].notna()]


def profile_batch_scaling(scenario: Scenario) -> dict[str, float] | None:
    """A batching node's batch cost as the scenario's profile measured it: ``per_extra_item`` k of
    mean(b) ≈ mean(1)·(1 + k·(b − 1)), fitted by least squares over the batch sizes it can serve (None: no batching)."""
    spec = scenario.nodes[0]
    if spec.batching is None or spec.batching.max_batch_size == 1:
        return None
    model = build_service_model(spec.service, scenario.base_dir)
    single_ms = model.mean_ms(1)
    extra, ratio = [], []
    for size in range(2, spec.batching.max_batch_size + 1):
        try:
            ratio.append(model.mean_ms(size) / single_ms - 1)
        except (ValueError, ScenarioError):  # a batch size the profile did not measure and cannot reach
            continue
        extra.append(size - 1)
    if not extra:
        raise TestbedError(f"{scenario.source}: nodes[0].service: the profile has no batch size above 1, so the batch cost "
                           "of the node's batching cannot be predicted; profile batch sizes up to max_batch_size")
    extra_items, ratios = np.asarray(extra, float), np.asarray(ratio, float)
    return {"per_extra_item": max(0.0, float(extra_items @ ratios / (extra_items @ extra_items)))}


def run_batch_scaling(calls: pd.DataFrame, fallback: dict[str, float]) -> dict[str, float]:
    """A run's own batch cost: ``per_extra_item`` of call time ≈ a + a·k·(b − 1) by least squares over its calls, or
    ``fallback`` (the profile's) when the run served fewer than two batch sizes."""
    sizes, times_ms = calls["batch_size"].to_numpy(float), calls["service_ms"].to_numpy(float)
    if np.unique(sizes).size < 2:
        return fallback
    slope, intercept = np.polyfit(sizes - 1, times_ms, 1)
    return {"per_extra_item": max(0.0, float(slope / intercept))} if intercept > 0 else fallback


def _write_column(path: Path, name: str, values: pd.Series) -> str:
    write_atomically(path, lambda temporary: pd.DataFrame({name: values.to_numpy()}).to_csv(temporary, index=False))
    return path.name


def _node(scenario: Scenario, service: dict[str, Any]) -> dict[str, Any]:
    spec = scenario.nodes[0]
    node = {"name": spec.name, "workers": spec.workers, "discipline": spec.discipline.model_dump(), "service": service}
    if spec.batching is not None:
        node["batching"] = spec.batching.model_dump()
    return node


def _classes(scenario: Scenario, arrivals: dict[str, dict] | None = None) -> list[dict[str, Any]]:
    classes = []
    for c in scenario.workload.classes:
        entry = {"name": c.name, "priority": c.priority}
        if arrivals is None:
            entry["share"] = c.share
        else:
            entry["arrival"] = arrivals[c.name]
        entry.update({key: value for key, value in
                      (("deadline_ms", c.deadline_ms), ("kind", c.kind), ("target", c.target)) if value is not None})
        classes.append(entry)
    return classes


def _write_scenario(path: Path, data: dict[str, Any]) -> Path:
    write_text_atomically(path, yaml.safe_dump(data, sort_keys=False))
    return path


def measured_scenario(scenario: Scenario, run_dir: Path, out_dir: Path, replications: int = 10) -> Path:
    """Prediction (b): the run's own arrivals at the queue (a trace per class), its calls' service times replayed
    in order, and its requests' time outside the queue and the worker."""
    table = pd.read_parquet(Path(run_dir) / "requests.parquet")
    served = _served(table).sort_values("dequeue_ms")
    out_dir.mkdir(parents=True, exist_ok=True)
    arrivals = {}
    for index, spec in enumerate(scenario.workload.classes):  # files by index: a class's name may be no file name
        enqueued_ms = served.loc[served["class"] == spec.name, "enqueue_ms"].sort_values()
        if enqueued_ms.empty:
            raise TestbedError(f"{Path(run_dir) / 'requests.parquet'}: no request of class {spec.name!r} was served; "
                               "a run's own prediction replays every class's arrivals")
        arrivals[spec.name] = {"process": "trace", "file": _write_column(out_dir / f"arrivals-{index}.csv", "enqueue_ms", enqueued_ms)}
    calls = served.drop_duplicates("batch_id").sort_values("dequeue_ms")
    service = {"distribution": "empirical", "process": "replay"}
    single_call_ms = calls["service_ms"]
    scaling = profile_batch_scaling(scenario)
    if scaling is not None:  # a batching node: each call's time as a single request's, batches priced by the run's own cost
        scaling = run_batch_scaling(calls, scaling)
        single_call_ms = single_call_ms / (1 + scaling["per_extra_item"] * (calls["batch_size"] - 1))
        service["batch_scaling"] = scaling
    service["file"] = _write_column(out_dir / "service-ms.csv", "service_ms", single_call_ms.clip(lower=MIN_TIME_MS))
    outside_file = _write_column(out_dir / "outside-ms.csv", "outside_ms", served["outside_ms"].clip(lower=MIN_TIME_MS))
    data = {
        "name": f"{scenario.name}-measured",
        "description": f"prediction (b) of the testbed run {Path(run_dir).name}: its arrivals at the queue, its "
        "calls' service times in the order they happened, its time outside the queue and the worker",
        "run": {
            "requests": len(served) - int(len(served) * WARMUP_FRACTION),
            "warmup_requests": int(len(served) * WARMUP_FRACTION),
            "replications": replications,
        },
        "workload": {"classes": _classes(scenario, arrivals)},
        "nodes": [_node(scenario, service)],
        "network": {"response": {"distribution": "empirical", "file": outside_file}},
    }
    return _write_scenario(out_dir / "measured.yaml", data)


def profile_scenario(
    scenario: Scenario,
    profile_dir: Path,
    rate_per_s: float,
    out_dir: Path,
    calibration: dict[str, Any] | None = None,
    requests: int = 20_000,
    replications: int = 10,
) -> Path:
    """Prediction (a): Poisson arrivals at ``rate_per_s`` split by the scenario's shares, the closed-loop
    profile's service time per request drawn i.i.d. (or its kernel time with a ``calibration``'s
    overhead and speed process), and its time outside the queue and the worker (or the calibration's)."""
    profile = _served(pd.read_parquet(Path(profile_dir) / "profile.parquet"))
    out_dir.mkdir(parents=True, exist_ok=True)
    if calibration is None:
        service = {"distribution": "empirical", "file": _write_column(out_dir / "profile-service-ms.csv", "service_ms",
                                                                      profile["service_ms"].clip(lower=MIN_TIME_MS))}
        outside = {"distribution": "empirical", "file": _write_column(out_dir / "profile-outside-ms.csv", "outside_ms",
                                                                      profile["outside_ms"].clip(lower=MIN_TIME_MS))}
        node_extra: dict[str, Any] = {}
    else:
        service = {"distribution": "empirical", "file": _write_column(out_dir / "profile-kernel-ms.csv", "kernel_ms",
                                                                      profile["kernel_ms"].clip(lower=MIN_TIME_MS))}
        outside = calibration["outside"]
        node_extra = {key: calibration[key] for key in ("overhead", "speed", "device") if calibration.get(key)}
    scaling = profile_batch_scaling(scenario)
    if scaling is not None:  # the profile's calls are single requests: batches cost what the profile's batch sizes do
        service["batch_scaling"] = scaling
    data = {
        "name": f"{scenario.name}-profile" + ("-calibrated" if calibration else ""),
        "description": "prediction (a): the closed-loop profile taken before the run, as a user has it"
        + (", calibrated on an earlier campaign" if calibration else ""),
        "run": {"requests": requests, "replications": replications},
        "workload": {"arrival": {"process": "poisson", "rate_per_s": rate_per_s}, "classes": _classes(scenario)},
        "nodes": [{**_node(scenario, service), **node_extra}],
        "network": {"response": outside},
    }
    return _write_scenario(out_dir / ("calibrated.yaml" if calibration else "profile.yaml"), data)
