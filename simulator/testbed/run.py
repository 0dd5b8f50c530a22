"""Measured runs: a real server process under real load, recorded for comparison with latsim.

``run_level`` starts a testbed server (a subprocess), optionally profiles it closed-loop (one
request outstanding, back to back, as a user measures service time before deploying), sends the
open-loop load from a separate load-generator process, stops the server, and joins the records
into ``requests.parquet``. ``measure_capacity`` finds the closed-loop throughput, so that load
levels can be given as fractions of it (``run_fractions``). Progress lines go to stderr.

Files of a run directory: ``testbed.json`` (server config), ``server.parquet`` / ``server.json`` /
``server.log`` (raw server records, summary, log), ``harness.parquet`` (the profiler's in-process
samples), ``profile-*`` and ``load-*`` (spec, raw client records, client summary), ``load.log``,
``profile.parquet`` and ``requests.parquet`` (joined, ms from the phase's start, see
:data:`~simulator.testbed.results.DERIVED_COLUMNS`), and ``run.json`` (the summary).

    python -m simulator.testbed.run --family cnn --variant fp32 --fractions 0.5 --duration-s 20 --out runs/cnn

CPU sharing: the server (event loop + workers) and the load generator run on the same machine.
``run.json`` reports the cores each used during the load, and those other processes kept busy (a
warning above ``BUSY_MACHINE_CORES``). Pinning (``server_cpus``, ``load_cpus``) is optional and
off by default: pinned to one core, the server's event loop and workers share it; on the
project's 2-core VM, pinned and unpinned runs (CNN fp32, 327/s) differed less than runs differed
from each other under the other processes' load.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import selectors
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import pandas as pd

from simulator.files import write_text_atomically
from simulator.formats.request_log import write_request_log
from simulator.terminal import visible
from simulator.testbed.config import TestbedConfig, refuse_unservable
from simulator.testbed.errors import TestbedError
from simulator.testbed.load import LoadSpec, make_schedule
from simulator.testbed.results import join_records, request_log_frame, summarize

SERVER_START_TIMEOUT_S = 900.0  # building a zoo model trains it first
SERVER_STOP_TIMEOUT_S = 120.0
CLOSED_LOOP_TIMEOUT_S = 1800.0
BUSY_MACHINE_CORES = 0.2  # other processes busier than this during the load: warn that timings are perturbed
LOG_TAIL_CHARS = 2000

REQUEST_LOG_FILE = "request_log.parquet"  # the run in the request-log format: what latsim calibrate reads


def _log(message: str) -> None:
    print(visible(f"testbed: {message}"), file=sys.stderr, flush=True)


def _child_env() -> dict[str, str]:
    """The environment of the server and load processes: they import the same ``simulator`` as this one."""
    root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


def _python_module(module: str, *arguments: str | Path) -> list[str]:
    """The command line that runs ``module`` with this interpreter."""
    return [sys.executable, "-m", module, *map(str, arguments)]


def _tail(path: Path) -> str:
    return path.read_text(errors="replace")[-LOG_TAIL_CHARS:] if path.is_file() else ""


def _cpus_arg(cpus: Sequence[int] | None) -> list[str]:
    return [] if cpus is None else ["--cpus", ",".join(map(str, cpus))]


def _busy_cpu_s() -> float:
    """CPU seconds the whole machine has been busy since boot (/proc/stat)."""
    fields = [int(value) for value in Path("/proc/stat").read_text().splitlines()[0].split()[1:8]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def _session_cpu_s(session_id: int) -> float:
    """User + system CPU seconds so far of every process in a session (/proc/<pid>/stat), those it waited for
    included: the server and the processes it started (LitServe's fronts and workers)."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        if int(fields[3]) == session_id:
            ticks += sum(int(value) for value in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


SERVER_MODULES = {"aiohttp": "simulator.testbed.server", "litserve": "simulator.testbed.litserve_server"}


class ServerProcess:
    """A testbed server subprocess (of the config's server kind, in a session of its own with every process it
    starts): listening and healthy inside ``with``, stopped by SIGTERM after; the session is killed on failure."""

    def __init__(
        self, config: TestbedConfig, out_dir: Path, harness: bool = False, cpus: Sequence[int] | None = None
    ) -> None:
        self.config, self.out_dir, self.cpus = config, Path(out_dir), cpus
        self.harness = harness and config.server == "aiohttp"  # LitServe's workers build the model in their own processes
        self.log_path = self.out_dir / "server.log"
        self.url = ""
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> Self:
        refuse_unservable(self.config, "the testbed config")
        if self.config.device != "cpu":  # checked here too, so that no server starts only to fail
            from simulator.testbed.device import serving_device

            serving_device(self.config.device)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        config_path = self.out_dir / "testbed.json"
        write_text_atomically(config_path, self.config.model_dump_json(indent=2))
        harness = ["--harness", self.out_dir / "harness.parquet"] if self.harness else []
        command = _python_module(
            SERVER_MODULES[self.config.server],
            *("--config", config_path, "--records", self.out_dir / "server.parquet"),
            *("--summary", self.out_dir / "server.json", *harness, *_cpus_arg(self.cpus)),
        )
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=log, env=_child_env(), start_new_session=True
            )
        try:
            self.url = f"http://127.0.0.1:{self._port()}"
            with urllib.request.urlopen(f"{self.url}/health", timeout=30) as response:
                response.read()
        except BaseException:
            self._kill()
            raise
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def _port(self) -> int:
        """The port from the server's first stdout line, once its model is built and warm."""
        assert self.process is not None and self.process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            if not selector.select(SERVER_START_TIMEOUT_S):
                raise TestbedError(f"the server did not listen within {SERVER_START_TIMEOUT_S} s; see {self.log_path}")
        line = self.process.stdout.readline()
        if not line:
            code = self.process.wait()
            raise TestbedError(f"the server exited ({code}) before listening:\n{_tail(self.log_path)}")
        return int(json.loads(line)["port"])

    def _kill(self) -> None:
        """Kill the server and every process of its session (LitServe's fronts, workers and queue manager)."""
        assert self.process is not None
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:  # all gone already
            pass
        self.process.wait()

    def __exit__(self, *exc_info: object) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(SERVER_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self._kill()
            raise TestbedError(
                f"the server did not stop within {SERVER_STOP_TIMEOUT_S} s; see {self.log_path}"
            ) from None
        self._kill()  # anything of its session it left behind
        if code != 0 and exc_info[0] is None:
            raise TestbedError(f"the server exited with {code}:\n{_tail(self.log_path)}")


def _run_load(spec: LoadSpec, out_dir: Path, name: str, timeout_s: float) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Run the load generator process on ``spec``; its files are ``<name>-spec.json``, ``-client.parquet``, ``-client.json``."""
    spec_path, records_path, summary_path = (
        out_dir / f"{name}-{suffix}" for suffix in ("spec.json", "client.parquet", "client.json")
    )
    write_text_atomically(spec_path, spec.model_dump_json(indent=2))
    command = _python_module(
        "simulator.testbed.load", "--spec", spec_path, "--out", records_path, "--summary", summary_path
    )
    log_path = out_dir / "load.log"
    with open(log_path, "ab") as log:
        try:
            done = subprocess.run(command, stdout=log, stderr=log, env=_child_env(), timeout=timeout_s, check=False)
        except subprocess.TimeoutExpired:
            raise TestbedError(f"the load generator ran over {timeout_s:.0f} s; see {log_path}") from None
    if done.returncode != 0:
        raise TestbedError(f"the load generator exited with {done.returncode}:\n{_tail(log_path)}")
    return pd.read_parquet(records_path), json.loads(summary_path.read_text())


class _CpuMeter:
    """Cores busy during a phase: the server, the load generator (whole process), and everything else."""

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid
        self.wall, self.machine, self.server, self.children = (
            time.monotonic(),
            _busy_cpu_s(),
            _session_cpu_s(server_pid),
            _children_cpu_s(),
        )

    def report(self, load_summary: Mapping[str, Any]) -> dict[str, float]:
        wall_s = time.monotonic() - self.wall
        machine = (_busy_cpu_s() - self.machine) / wall_s
        server = (_session_cpu_s(self.server_pid) - self.server) / wall_s
        load = (_children_cpu_s() - self.children) / wall_s
        return {
            "window_s": round(wall_s, 3),
            "server_cores": round(server, 3),
            "load_generator_process_cores": round(load, 3),  # start-up, imports and warm-up included
            "load_generator_cores_while_sending": load_summary["cpu_cores_used"],
            "machine_busy_cores": round(machine, 3),
            "other_processes_cores": round(max(machine - server - load, 0.0), 3),
            "machine_cores": os.cpu_count(),
        }


@dataclass(frozen=True)
class RunResult:
    """A finished run: where its files are, and its summary (``run.json``)."""

    out_dir: Path
    summary: dict[str, Any]

    @property
    def valid(self) -> bool:
        return bool(self.summary["valid"])

    def requests(self) -> pd.DataFrame:
        """The joined per-request table of the load phase."""
        return pd.read_parquet(self.out_dir / "requests.parquet")


@dataclass(frozen=True)
class Capacity:
    """Closed-loop capacity: ``throughput_per_s`` with ``concurrency`` requests outstanding, and the
    rate the workers alone could sustain (``workers`` / mean worker busy time per request), which
    leaves out the client's round trips between requests. The first 10 % of replies are warm-up."""

    throughput_per_s: float
    worker_limit_per_s: float
    concurrency: int
    requests: int
    latency_p50_ms: float
    valid: bool


def _base_spec(config: TestbedConfig, url: str, seed: int, cpus: Sequence[int] | None) -> dict[str, Any]:
    return {
        "url": url,
        "classes": tuple(c.name for c in config.classes),
        "shares": tuple(c.share for c in config.classes),
        "seed": seed,
        "cpus": None if cpus is None else tuple(cpus),
    }


def _harness_summary(path: Path) -> list[dict[str, Any]] | None:
    if not path.is_file():
        return None
    samples = pd.read_parquet(path)
    stats = samples.groupby(["mode", "batch_size", "concurrency", "stage"])["latency_ms"].describe(
        percentiles=[0.5, 0.99]
    )
    return (
        stats[["count", "mean", "50%", "99%"]]
        .rename(columns={"50%": "p50", "99%": "p99"})
        .reset_index()
        .to_dict("records")
    )


def run_level(
    config: TestbedConfig,
    rate_per_s: float | None,
    out_dir: Path,
    *,
    duration_s: float | None = None,
    requests: int | None = None,
    seed: int = 0,
    arrival: Mapping[str, Any] | None = None,
    profile_requests: int = 200,
    harness: bool = True,
    capacity_per_s: float | None = None,
    server_cpus: Sequence[int] | None = None,
    load_cpus: Sequence[int] | None = None,
    max_p99_lateness_ms: float = 1.0,
    max_lateness_ms: float = 10.0,
) -> RunResult:
    """One measured run: Poisson arrivals at ``rate_per_s`` (or the ``arrival`` process of
    :mod:`~simulator.testbed.load`: poisson, mmpp, trace) for ``duration_s`` or ``requests``.

    The run is invalid when a request failed or went unrecorded, or the sender fell behind
    (lateness over the two limits); ``warnings`` name other processes that kept the CPU busy."""
    if (rate_per_s is None) == (arrival is None):
        raise TestbedError("give either rate_per_s (Poisson) or arrival, not both")
    chosen_arrival = {"process": "poisson", "rate_per_s": rate_per_s} if arrival is None else dict(arrival)
    out_dir = Path(out_dir)
    with ServerProcess(config, out_dir, harness=harness, cpus=server_cpus) as server:
        base = _base_spec(config, server.url, seed, load_cpus)
        profile = None
        if profile_requests:
            _log(f"profile: {profile_requests} back-to-back requests, one outstanding")
            spec = LoadSpec.parse(
                base | {"mode": "closed", "phase": "profile", "requests": profile_requests, "warm_connections": 1}
            )
            profile = _run_load(spec, out_dir, "profile", CLOSED_LOOP_TIMEOUT_S)
        spec = LoadSpec.parse(
            base
            | {
                "arrival": chosen_arrival,
                "duration_s": duration_s,
                "requests": requests,
                "id_start": profile_requests,
                "max_p99_lateness_ms": max_p99_lateness_ms,
                "max_lateness_ms": max_lateness_ms,
            }
        )
        planned = make_schedule(spec)
        _log(
            f"load: {len(planned)} requests over {planned.span_s:.1f} s ({len(planned) / max(planned.span_s, 1e-9):.1f}/s)"
        )
        meter = _CpuMeter(server.pid)
        client, load_summary = _run_load(spec, out_dir, "load", planned.span_s + spec.timeout_s + 120)
        cpu = meter.report(load_summary)
    server_records = pd.read_parquet(out_dir / "server.parquet")
    table = join_records(server_records, client, load_summary["t0_ns"], config.batching.dynamic)
    table.to_parquet(out_dir / "requests.parquet", index=False)
    level = rate_per_s / capacity_per_s if rate_per_s and capacity_per_s else None
    write_request_log(request_log_frame(table, rate_per_s, level), out_dir / REQUEST_LOG_FILE)
    reasons = list(load_summary["invalid_reasons"])
    unserved = int(table["server_ms"].isna().sum())
    if unserved:
        reasons.append(f"{unserved} requests have no server record")
    warnings = []
    if cpu["other_processes_cores"] > BUSY_MACHINE_CORES:
        warnings.append(
            f"other processes kept {cpu['other_processes_cores']:.2f} of {cpu['machine_cores']} cores busy: "
            "kernels and wake-ups were slowed by them"
        )
    summary: dict[str, Any] = {
        "model": config.model_label,
        "config": config.model_dump(mode="json"),
        "arrival": load_summary["spec"]["arrival"],
        "seed": seed,
        "offered_rate_per_s": load_summary["offered_rate_per_s"],
        "capacity_per_s": capacity_per_s,
        "load_fraction": None
        if capacity_per_s is None or rate_per_s is None
        else round(rate_per_s / capacity_per_s, 4),
        "valid": not reasons,
        "invalid_reasons": reasons,
        "warnings": warnings,
        "lateness_ms": load_summary["lateness_ms"],
        "cpu": cpu,
        "load": summarize(table, config.workers),
    }
    if profile is not None:
        profile_table = join_records(server_records, profile[0], profile[1]["t0_ns"], config.batching.dynamic)
        profile_table.to_parquet(out_dir / "profile.parquet", index=False)
        summary["profile"] = summarize(profile_table, config.workers)
    summary["harness"] = _harness_summary(out_dir / "harness.parquet")
    write_text_atomically(out_dir / "run.json", json.dumps(summary, indent=2))
    load = summary["load"]
    _log(
        f"{'VALID' if not reasons else 'INVALID'}: latency p50 {load['latency_ms']['p50']:.2f} / p99 "
        f"{load['latency_ms']['p99']:.2f} ms (server {load['server_ms']['p50']:.2f} / {load['server_ms']['p99']:.2f}), "
        f"sender lateness p99 {summary['lateness_ms']['p99']:.3f} ms" + "".join(f"; {r}" for r in reasons + warnings)
    )
    return RunResult(out_dir, summary)


def measure_capacity(
    config: TestbedConfig,
    out_dir: Path | None = None,
    *,
    requests: int = 3000,
    concurrency: int | None = None,
    server_cpus: Sequence[int] | None = None,
    load_cpus: Sequence[int] | None = None,
) -> Capacity:
    """Closed-loop capacity with ``concurrency`` outstanding requests (default: workers × max batch size)."""
    concurrency = concurrency or config.workers * config.batching.max_batch_size
    with tempfile.TemporaryDirectory(prefix="latsim-capacity-") as scratch:
        where = Path(out_dir) if out_dir is not None else Path(scratch)
        with ServerProcess(config, where, cpus=server_cpus) as server:
            _log(f"capacity: {requests} requests, {concurrency} outstanding")
            spec = LoadSpec.parse(
                _base_spec(config, server.url, 0, load_cpus)
                | {
                    "mode": "closed",
                    "phase": "capacity",
                    "requests": requests,
                    "concurrency": concurrency,
                    "warm_connections": min(concurrency, 64),
                }
            )
            client, summary = _run_load(spec, where, "capacity", CLOSED_LOOP_TIMEOUT_S)
        table = join_records(pd.read_parquet(where / "server.parquet"), client, summary["t0_ns"], config.batching.dynamic)
    steady = table.sort_values("reply_received_ms").iloc[len(table) // 10 :]  # the first 10 %: warm-up
    replies_ms = steady["reply_received_ms"].to_numpy()
    throughput_per_s = (len(replies_ms) - 1) * 1000.0 / (replies_ms[-1] - replies_ms[0])
    batches = steady.drop_duplicates("batch_id")
    per_request_busy_ms = batches["worker_busy_ms"].sum() / batches["batch_size"].sum()
    capacity = Capacity(
        throughput_per_s=round(float(throughput_per_s), 3),
        worker_limit_per_s=round(float(config.workers * 1000.0 / per_request_busy_ms), 3),
        concurrency=concurrency,
        requests=requests,
        latency_p50_ms=round(float(steady["latency_ms"].median()), 4),
        valid=bool(summary["valid"]),
    )
    if out_dir is not None:
        write_text_atomically(Path(out_dir) / "capacity.json", json.dumps(capacity.__dict__, indent=2))
    _log(
        f"capacity: {capacity.throughput_per_s:.1f}/s closed-loop (workers alone: {capacity.worker_limit_per_s:.1f}/s)"
    )
    return capacity


def run_fractions(
    config: TestbedConfig,
    fractions: Sequence[float],
    out_dir: Path,
    *,
    duration_s: float | None = None,
    requests: int | None = None,
    seed: int = 0,
    capacity: Capacity | None = None,
    **options: Any,
) -> list[RunResult]:
    """``run_level`` at each fraction of the closed-loop capacity (measured first unless given), in
    ``out_dir/load-<fraction>``; ``options`` go to ``run_level`` (and the CPU pinning to the capacity run)."""
    out_dir = Path(out_dir)
    pinning = {key: options[key] for key in ("server_cpus", "load_cpus") if key in options}
    capacity = capacity or measure_capacity(config, out_dir / "capacity", **pinning)
    results = []
    for fraction in fractions:
        rate = fraction * capacity.throughput_per_s
        _log(f"level {fraction:.2f} of capacity: {rate:.1f}/s")
        results.append(
            run_level(
                config,
                rate,
                out_dir / f"load-{fraction:.2f}",
                duration_s=duration_s,
                requests=requests,
                seed=seed,
                capacity_per_s=capacity.throughput_per_s,
                **options,
            )
        )
    return results


def _config_from(args: argparse.Namespace) -> TestbedConfig:
    if args.config is not None:
        return TestbedConfig.read(args.config)
    return TestbedConfig.parse(
        {
            "model": {"family": args.family, "variant": args.variant, "size": args.size},
            "workers": args.workers,
            "intra_op_threads": args.threads,
            "discipline": args.discipline,
            "batching": {"max_batch_size": args.max_batch_size, "max_queue_delay_ms": args.max_queue_delay_ms},
        }
    )


def _cpu_list(text: str | None) -> list[int] | None:
    return None if text is None else [int(cpu) for cpu in text.split(",")]


def main(argv: list[str] | None = None) -> int:
    """Measure load levels of one configuration and print one line per level."""
    parser = argparse.ArgumentParser(prog="python -m simulator.testbed.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--config", type=Path, help="TestbedConfig JSON (else the options below)")
    parser.add_argument("--family", default="cnn", choices=["mlp", "cnn", "transformer"])
    parser.add_argument("--variant", default="fp32")
    parser.add_argument("--size", default="standard", choices=["standard", "tiny"])
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads of the server")
    parser.add_argument("--discipline", default="fifo", choices=["fifo", "priority", "edf"])
    parser.add_argument("--max-batch-size", type=int, default=1)
    parser.add_argument("--max-queue-delay-ms", type=float, default=0.0)
    level = parser.add_mutually_exclusive_group(required=True)
    level.add_argument("--fractions", help="comma-separated fractions of the measured capacity, e.g. 0.3,0.5,0.7")
    level.add_argument("--rate", type=float, help="one Poisson rate per second")
    extent = parser.add_mutually_exclusive_group(required=True)
    extent.add_argument("--duration-s", type=float)
    extent.add_argument("--requests", type=int)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--profile-requests", type=int, default=200)
    parser.add_argument("--no-harness", action="store_true", help="skip the in-process harness profile")
    parser.add_argument("--server-cpus", help="pin the server, e.g. 0")
    parser.add_argument("--load-cpus", help="pin the load generator, e.g. 1")
    args = parser.parse_args(argv)
    try:
        config = _config_from(args)
        options = {
            "duration_s": args.duration_s,
            "requests": args.requests,
            "seed": args.seed,
            "profile_requests": args.profile_requests,
            "harness": not args.no_harness,
            "server_cpus": _cpu_list(args.server_cpus),
            "load_cpus": _cpu_list(args.load_cpus),
        }
        if args.rate is not None:
            results = [run_level(config, args.rate, args.out, **options)]
        else:
            results = run_fractions(config, [float(f) for f in args.fractions.split(",")], args.out, **options)
    except TestbedError as error:
        print(visible(f"error: {error}"), file=sys.stderr)
        return 2
    for result in results:
        s, load = result.summary, result.summary["load"]
        print(visible(
            f"{result.out_dir}: {'valid' if result.valid else 'INVALID'} {s['offered_rate_per_s']:.1f}/s "
            f"latency p50 {load['latency_ms']['p50']:.2f} p99 {load['latency_ms']['p99']:.2f} ms, "
            f"server p50 {load['server_ms']['p50']:.2f} p99 {load['server_ms']['p99']:.2f} ms, "
            f"utilization {load['worker_utilization']:.2f}, lateness p99 {s['lateness_ms']['p99']:.3f} ms, "
            f"load generator {s['cpu']['load_generator_cores_while_sending']:.2f} cores while sending"
        ))
    return 0


if __name__ == "__main__":
    sys.exit(main())
