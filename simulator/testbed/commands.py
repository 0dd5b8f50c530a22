"""``latsim testbed``: serve a scenario's model for real, load it, measure campaigns, calibrate, compare.

The commands import the testbed (aiohttp, torch, pandas) only when they run, so that ``latsim``
starts fast and plans without them.
"""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from simulator.terminal import visible

testbed_app = typer.Typer(
    name="testbed",
    help="Measure a real serving process under real load, and compare latsim's predictions with it.",
    no_args_is_help=True,
)

DEFAULT_LEVELS = "0.3,0.5,0.7,0.8"


def _say(message: str) -> None:
    print(visible(f"testbed: {message}"), file=sys.stderr, flush=True)


def _levels(text: str) -> list[float]:
    try:
        levels = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise typer.BadParameter(f"comma-separated fractions, e.g. {DEFAULT_LEVELS}; got {text!r}", param_hint="--levels") from None
    if not levels or any(not 0 < level < 1 for level in levels):
        raise typer.BadParameter(f"every level must lie in (0, 1); got {text!r}", param_hint="--levels")
    return levels


def _config(scenario: Path, threads: int, server: str):
    from simulator.scenario.loader import load_scenario
    from simulator.testbed.scenario import testbed_config

    return testbed_config(load_scenario(scenario), threads, server=server)


def _server_kind(text: str) -> str:
    from simulator.testbed.config import SERVER_KINDS

    if text not in SERVER_KINDS:
        raise typer.BadParameter(f"one of {', '.join(SERVER_KINDS)}; got {text!r}", param_hint="--server")
    return text


ScenarioArgument = Annotated[Path, typer.Argument(help="scenario YAML file describing one node (see docs/testbed.md)")]
ThreadsOption = Annotated[int, typer.Option(min=1, max=256, help="intra-op threads of the server's torch")]
ServerOption = Annotated[
    str,
    typer.Option(
        callback=_server_kind,
        help="the server kind: aiohttp (latsim's own: worker threads behind one event loop) or litserve "
        "(LitServe: one process per worker; FIFO only)",
    ),
]


@testbed_app.command()
def serve(
    scenario: ScenarioArgument,
    out: Annotated[Path, typer.Option(help="folder for the server's records (server.parquet), summary and log")],
    threads: ThreadsOption = 1,
    server: ServerOption = "aiohttp",
) -> None:
    """Serve the scenario's model over HTTP until Ctrl-C, then write every request's record."""
    from simulator.testbed.run import ServerProcess

    config = _config(scenario, threads, server)
    with ServerProcess(config, out) as server:
        typer.echo(json.dumps({"url": server.url, "classes": [c.name for c in config.classes]}))
        _say(f"serving {config.model_label} at {server.url}; Ctrl-C stops it and writes {out / 'server.parquet'}")
        signal.pause()


@testbed_app.command()
def load(
    scenario: ScenarioArgument,
    url: Annotated[str, typer.Option(help="the server's base URL, as `latsim testbed serve` printed it")],
    rate: Annotated[float, typer.Option(min=1e-3, max=1e6, help="Poisson arrivals per second")],
    out: Annotated[Path, typer.Option(help="folder for the client records (load-client.parquet, request_log.parquet) and summary")],
    duration_s: Annotated[float, typer.Option(min=0.1, max=86_400, help="seconds of load")] = 30.0,
    seed: Annotated[int, typer.Option(min=0)] = 0,
    id_start: Annotated[int, typer.Option(min=0, help="first request id (ids must not repeat on one server)")] = 0,
    path: Annotated[str, typer.Option(help="where on the server requests are posted (docs/testbed.md: the request)")] = "/infer",
) -> None:
    """Send open-loop Poisson load to a running server, classes mixed by the scenario's shares."""
    from simulator.files import (
        make_output_folder,
        write_atomically,
        write_text_atomically,
    )
    from simulator.scenario.loader import load_scenario
    from simulator.formats.request_log import write_request_log
    from simulator.testbed.load import LoadSpec, run_load
    from simulator.testbed.results import request_log_frame
    from simulator.testbed.run import REQUEST_LOG_FILE

    classes = load_scenario(scenario).workload.classes
    spec = LoadSpec.parse({
        "url": url, "classes": [c.name for c in classes], "shares": [c.share for c in classes],
        "arrival": {"process": "poisson", "rate_per_s": rate}, "duration_s": duration_s, "seed": seed, "id_start": id_start, "path": path,
    })
    folder = make_output_folder(out)
    records, summary = run_load(spec)
    write_atomically(folder / "load-client.parquet", lambda path: records.to_parquet(path, index=False))
    origin_ns = float(records["scheduled_ns"].min())
    in_ms = records.assign(**{name.removesuffix("_ns") + "_ms": (records[name].where(records[name] >= 0) - origin_ns) / 1e6
                              for name in ("scheduled_ns", "send_ns", "reply_received_ns")})
    write_request_log(request_log_frame(in_ms, rate), folder / REQUEST_LOG_FILE)
    write_text_atomically(folder / "load-client.json", json.dumps(summary, indent=2))
    verdict = "valid" if summary["valid"] else "INVALID: " + "; ".join(summary["invalid_reasons"])
    typer.echo(visible(f"{summary['ok']} of {summary['requests']} requests answered; sender lateness p99 "
                       f"{summary['lateness_ms']['p99']:.3f} ms; {verdict}"))


@testbed_app.command()
def capacity(
    scenario: ScenarioArgument,
    slo: Annotated[str, typer.Option(help="the SLO the rate must meet, STATISTIC<=MS over all requests, e.g. p99<=25")],
    out: Annotated[Path, typer.Option(help="folder for capacity.json and each run's request log")],
    low: Annotated[float, typer.Option(min=1e-3, max=1e6, help="a rate (requests/s) expected to meet the SLO")],
    high: Annotated[float, typer.Option(min=1e-3, max=1e6, help="a rate expected not to")],
    url: Annotated[Optional[str], typer.Option(help="a running server to measure (default: serve the scenario's model)")] = None,
    repeats: Annotated[int, typer.Option(min=1, max=20, help="runs per rate; a rate is met when every valid one is")] = 2,
    duration_s: Annotated[float, typer.Option(min=1, max=3600, help="seconds per run")] = 10.0,
    tolerance: Annotated[float, typer.Option(min=1e-3, max=1, help="stop when the bracket is this narrow, relative")] = 0.03,
    calibration: Annotated[
        Optional[Path], typer.Option(help="a calibration of this server: its predicted maximum rate is searched too")
    ] = None,
    seed: Annotated[int, typer.Option(min=0)] = 0,
    threads: ThreadsOption = 1,
    server: ServerOption = "aiohttp",
    max_p99_lateness_ms: Annotated[float, typer.Option(min=0.001, help="a run whose sender's p99 lateness exceeds this is invalid")] = 1.0,
    max_lateness_ms: Annotated[float, typer.Option(min=0.001, help="a run whose sender's lateness ever exceeds this is invalid")] = 10.0,
) -> None:
    """The highest rate at which the real server meets an SLO (bisection on the server), beside latsim's prediction of
    it from the scenario's profile (and from a calibration)."""
    import contextlib

    from simulator.files import make_output_folder, write_text_atomically
    from simulator.formats.request_log import write_request_log
    from simulator.scenario.loader import load_scenario
    from simulator.testbed.capacity import latency_of_records, parse_slo, search_capacity, simulated_probe
    from simulator.testbed.load import LoadSpec, run_load
    from simulator.testbed.results import request_log_frame
    from simulator.testbed.run import ServerProcess

    if high <= low:
        raise typer.BadParameter("must be above --low", param_hint="--high")
    bound = parse_slo(slo)
    loaded = load_scenario(scenario)
    classes = loaded.workload.classes
    folder = make_output_folder(out)
    sent = 0

    with contextlib.ExitStack() as stack:
        target = url or stack.enter_context(ServerProcess(_config(scenario, threads, server), folder / "server")).url

        def measured(rate: float, repeat: int) -> tuple[float, bool]:
            nonlocal sent
            spec = LoadSpec.parse({
                "url": target, "classes": [c.name for c in classes], "shares": [c.share for c in classes],
                "arrival": {"process": "poisson", "rate_per_s": rate}, "duration_s": duration_s,
                "seed": seed + sent, "id_start": sent,
                "max_p99_lateness_ms": max_p99_lateness_ms, "max_lateness_ms": max_lateness_ms,
            })
            records, summary = run_load(spec)
            sent += len(records)
            in_ms = records.assign(**{name.removesuffix("_ns") + "_ms": (records[name].where(records[name] >= 0)
                                      - float(records["scheduled_ns"].min())) / 1e6
                                      for name in ("scheduled_ns", "send_ns", "reply_received_ns")})
            write_request_log(request_log_frame(in_ms, rate), folder / f"rate-{rate:.4g}-repeat-{repeat}.parquet")
            return bound.value_ms(latency_of_records(records)), bool(summary["valid"])

        real = search_capacity(measured, bound, low, high, repeats, tolerance, _say)
    predicted = {"profile": search_capacity(simulated_probe(loaded, bound), bound, low, high, 1, tolerance)}
    if calibration is not None:
        calibrated = loaded.replace("nodes[0].calibration", {"file": str(Path(calibration).resolve())})
        predicted["calibrated"] = search_capacity(simulated_probe(calibrated, bound), bound, low, high, 1, tolerance)
    document = {"scenario": str(scenario), "url": url, "slo": str(bound), "measured": real, "predicted": predicted}
    write_text_atomically(folder / "capacity.json", json.dumps(document, indent=1, allow_nan=False) + "\n")
    for name, found in {"measured": real, **{f"predicted ({kind})": value for kind, value in predicted.items()}}.items():
        low_end, high_end = found["low_per_s"], found["high_per_s"]
        bracket = f"{low_end:.4g}–{high_end:.4g}/s" if low_end and high_end else f"{low_end or '—'}–{high_end or '—'}/s"
        typer.echo(visible(f"{name:>22}: {bound} up to {bracket}" + (f" ({found['stopped']})" if found["stopped"] else "")))
    typer.echo(visible(f"wrote {folder / 'capacity.json'}"))


@testbed_app.command("run")
def run_command(
    scenario: ScenarioArgument,
    out: Annotated[Path, typer.Option(help="campaign folder: measurements, a scenario per level, campaign.json")],
    levels: Annotated[str, typer.Option(help="load levels: fractions of the server's saturated throughput")] = DEFAULT_LEVELS,
    repeats: Annotated[int, typer.Option(min=1, max=100, help="runs per level")] = 3,
    duration_s: Annotated[float, typer.Option(min=1, max=3600, help="seconds of load per run")] = 30.0,
    seed: Annotated[int, typer.Option(min=0)] = 0,
    threads: ThreadsOption = 1,
    server: ServerOption = "aiohttp",
    workers: Annotated[Optional[int], typer.Option(min=1, max=64, help="worker threads (default: the scenario's node workers)")] = None,
    model_size: Annotated[str, typer.Option(help="standard, or tiny: the zoo's small test model (a quick trial)")] = "standard",
    profile_snapshots: Annotated[
        int, typer.Option(min=1, max=100, help="closed-loop profile snapshots, each by a fresh server, one after the other")
    ] = 5,
    profile_requests: Annotated[int, typer.Option(min=10, max=1_000_000, help="requests per profile snapshot")] = 1000,
    max_p99_lateness_ms: Annotated[
        float, typer.Option(min=0.001, max=1e6, help="a run whose sender's p99 lateness exceeds this is invalid")
    ] = 1.0,
    max_lateness_ms: Annotated[
        float, typer.Option(min=0.001, max=1e6, help="a run whose sender was ever later than this is invalid")
    ] = 10.0,
) -> None:
    """Capacity, a closed-loop profile (what a user has), then every level REPEATS times, open loop."""
    from simulator.testbed.campaign import run_campaign

    campaign = run_campaign(
        scenario, _levels(levels), repeats, out, duration_s=duration_s, seed=seed, intra_op_threads=threads,
        workers=workers, model_size=model_size, server=server, profile_snapshots=profile_snapshots, profile_requests=profile_requests,
        max_p99_lateness_ms=max_p99_lateness_ms, max_lateness_ms=max_lateness_ms,
    )
    invalid = [entry for entry in campaign["runs"] if not entry["valid"]]
    typer.echo(visible(f"{len(campaign['runs']) - len(invalid)} of {len(campaign['runs'])} runs valid; campaign in {out}"))
    for entry in invalid:
        typer.echo(visible(f"  INVALID {entry['dir']}: {'; '.join(entry['reasons'])}"))


@testbed_app.command()
def calibrate(
    campaign: Annotated[Path, typer.Argument(help="campaign folder (latsim testbed run --out)")],
    out: Annotated[Path, typer.Option(help="calibration YAML to write (with its outside-time CSV beside it)")],
) -> None:
    """Fit the overhead by occupancy, the machine's speed process, its concurrency slowdown and the time outside the
    server's queue and workers under load, from a campaign."""
    from simulator.testbed.calibrate import write_calibration

    written = write_calibration(campaign, out)
    typer.echo(visible(f"wrote {written}"))


@testbed_app.command()
def compare(
    campaign: Annotated[Path, typer.Argument(help="campaign folder (latsim testbed run --out)")],
    calibration: Annotated[
        Optional[Path], typer.Option(help="calibration from an earlier campaign: adds prediction (a) calibrated")
    ] = None,
    out: Annotated[Optional[Path], typer.Option(help="report folder (default: CAMPAIGN/report)")] = None,
) -> None:
    """Predict every run two ways and write the comparison (CSV, Markdown, HTML, plots)."""
    from simulator.report.testbed import write_testbed_report
    from simulator.scenario.calibration import read_calibration
    from simulator.testbed.compare import compare_campaign
    from simulator.testbed.report_data import report_data

    calibrating = None if calibration is None else read_calibration(calibration)
    table = compare_campaign(campaign, calibrating, progress=_say)
    written = write_testbed_report(report_data(campaign, table, calibration), out or Path(campaign) / "report")
    typer.echo(visible(f"wrote {', '.join(str(path) for path in written[:3])} and {len(written) - 3} plots"))
