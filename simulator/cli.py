"""The ``latsim`` command line: one command per pipeline stage.

Each command imports what it needs when it runs, so ``latsim --help``, ``schema`` and
``validate`` start without numpy's heavier neighbours (scipy, pandas, matplotlib).

What a user sees is a result or one clear message, never a traceback (unless ``--debug``). Exit
codes: 0 done, 1 / 4 a class's SLO verdict is violated / inconclusive (``run --fail-on-slo``), 2 bad
input (a file, a field, an option or an output path), 3 unstable system, 70 internal error (a bug: the
message asks for a report), 130 / 143 interrupted by SIGINT (Ctrl-C) / SIGTERM.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived: unwinds the command (temporary files are removed on the way) to :func:`main`.

    A ``BaseException``, so that no ``except Exception`` on the way swallows it.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


_handler_pid: int | None = None  # the latsim process itself; forked replication workers inherit the handler
_in_main = False  # True once main() runs: before that an interrupt has nothing to clean up
_interrupted = False


def _say_interrupted(signum: int) -> None:
    """The one line an interrupt prints, written straight to the descriptor (safe inside a signal handler)."""
    message = (
        f"latsim: interrupted by {signal.Signals(signum).name}; stopped. Output files not reported as written "
        "were not written (an --out folder keeps its INCOMPLETE marker)\n"
    )
    try:
        os.write(2, message.encode())
    except OSError:
        pass


def _on_signal(signum: int, _frame: object) -> None:
    """Stop promptly: raise :class:`Interrupted` in main(); exit at once while loading, in a worker, or on a second signal."""
    global _interrupted
    if os.getpid() != _handler_pid:
        os._exit(128 + signum)  # a forked replication worker: the parent reports and cleans up
    if not _in_main or _interrupted:
        _say_interrupted(signum)
        os._exit(128 + signum)  # still importing (nothing to clean up), or asked twice
    _interrupted = True
    workers = sys.modules.get("multiprocessing")
    if workers is not None:
        for child in workers.active_children():  # replication workers would otherwise finish their runs first
            child.terminate()
    raise Interrupted(signum)


def _exit_now(code: int) -> None:
    """Exit once the interrupted command has unwound, skipping interpreter teardown: code cut off mid-way (numba
    compiling, for one) can leave half-built objects whose finalizers would print tracebacks after the one line."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def _install_interrupt_handlers() -> None:
    global _handler_pid
    _handler_pid = os.getpid()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _on_signal)


def _launched_as_latsim() -> bool:
    """True when this process is the ``latsim`` program (or ``python -m simulator``), not a program importing the CLI."""
    program = Path(sys.argv[0]) if sys.argv and sys.argv[0] else Path()
    return program.name == "latsim" or (program.name == "__main__.py" and program.parent.name == "simulator")


if _launched_as_latsim():
    _install_interrupt_handlers()  # before the imports below: Ctrl-C while they load ends quietly too

import json  # noqa: E402
import shlex  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from functools import partial  # noqa: E402
from typing import Annotated, Literal, Optional  # noqa: E402

import typer  # noqa: E402
from rich.console import Console  # noqa: E402

from simulator.errors import LatsimError, UnstableSystemError  # noqa: E402
from simulator.profiling.command import profile_command  # noqa: E402
from simulator.terminal import plain, visible  # noqa: E402
from simulator.testbed.commands import testbed_app  # noqa: E402

app = typer.Typer(
    name="latsim",
    help="Discrete-event latency simulator and capacity planner for real-time model serving.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
TABLE_WIDTH = 160  # when output is not a terminal (a file, a pipe, CI logs), print full-width tables
stderr = Console(stderr=True)
app.command("profile")(profile_command)  # torch is imported only when profiling runs
app.add_typer(testbed_app)  # aiohttp and torch are imported only when a testbed command runs

EXIT_SLO_VIOLATED = 1
EXIT_BAD_INPUT = 2
EXIT_UNSTABLE = 3
EXIT_SLO_INCONCLUSIVE = 4
EXIT_INTERNAL = 70  # EX_SOFTWARE of sysexits.h
MAX_REQUESTS = 1_000_000_000  # --requests: a billion measured requests is hours of simulation per replication
MAX_REPLICATIONS = 10_000
MAX_MESSAGE_CHARS = 4_000  # an error message is cut here: no input makes latsim print megabytes
PROGRESS_LINE_EVERY_S = 10.0  # without a terminal (a log, CI), a progress line at most this often

_debug = False


def _print_version(asked: bool) -> None:
    """``latsim --version``: the installed package's version, from its metadata."""
    if asked:
        from importlib.metadata import version

        typer.echo(f"latsim {version('latsim')}")
        raise typer.Exit()


@app.callback()
def _global_options(
    debug: Annotated[
        bool, typer.Option("--debug", help="on an internal error, show its traceback instead of a one-line report")
    ] = False,
    _version: Annotated[
        bool, typer.Option("--version", is_eager=True, callback=_print_version, help="print latsim's version and exit")
    ] = False,
) -> None:
    global _debug
    _debug = debug


def _console(to_stderr: bool) -> Console:
    """A terminal's own width, or the width COLUMNS names; else (a file, a pipe) TABLE_WIDTH."""
    probe = Console(stderr=to_stderr)
    return probe if probe.is_terminal or os.environ.get("COLUMNS", "").isdigit() else Console(stderr=to_stderr, width=TABLE_WIDTH)


def _print_error(label: str, message: str) -> None:
    if len(message) > MAX_MESSAGE_CHARS:
        message = f"{message[:MAX_MESSAGE_CHARS]}… ({len(message) - MAX_MESSAGE_CHARS} more characters)"
    stderr.print(f"[bold red]{label}:[/] {plain(message)}", highlight=False, soft_wrap=True)


def _report(error: LatsimError) -> int:
    """Print an error the user can fix, plainly; return its exit code (3 unstable, 2 any other)."""
    if isinstance(error, UnstableSystemError):
        _print_error("unstable system", str(error))
        return EXIT_UNSTABLE
    _print_error("error", str(error))
    return EXIT_BAD_INPUT


@contextmanager
def _user_errors() -> Iterator[None]:
    """Errors a user can fix are printed plainly (no traceback) with a distinct exit code."""
    try:
        yield
    except LatsimError as error:
        raise typer.Exit(_report(error)) from None


def _shown(name: str, limit: int = 80) -> str:
    """A scenario's name as progress and ``validate`` lines show it: control characters visible, cut to ``limit`` characters."""
    name = visible(name, lines=False)
    return name if len(name) <= limit else name[: limit - 1] + "…"


def _bounded_jobs(jobs: int, replications: int) -> int:
    """``--jobs`` lowered to the replications and the CPUs there are (more processes only wait); says so when lowered."""
    from simulator.runner.executors import available_cpus

    cpus = available_cpus()
    bounded = max(1, min(jobs, replications, cpus))
    if bounded < jobs:
        stderr.print(f"note: --jobs {jobs} lowered to {bounded} ({replications} replication(s), {cpus} CPU(s))", highlight=False)
    return bounded


def _progress_lines(description: str, total: int, unit: str = "measured requests") -> Callable[[int], None]:
    """Progress for a log or pipe (no live bar there): a line at the start and then every PROGRESS_LINE_EVERY_S,
    with the time left at the pace so far."""
    done = 0
    started = last = time.monotonic()
    stderr.print(plain(f"{description}: {total:,} {unit} in all"), highlight=False)

    def advance(finished: int) -> None:
        nonlocal done, last
        done += finished
        now = time.monotonic()
        if now - last >= PROGRESS_LINE_EVERY_S:
            last = now
            left = f", about {(now - started) / done * (total - done):.0f} s left" if 0 < done < total else ""
            stderr.print(plain(f"{description}: {done:,} of {total:,} {unit} ({done / total:.1%}){left}"), highlight=False)

    return advance


@app.command()
def run(
    scenario: Annotated[Path, typer.Argument(help="scenario YAML file")],
    requests: Annotated[
        Optional[int], typer.Option(min=1, max=MAX_REQUESTS, help="measured requests per replication")
    ] = None,
    replications: Annotated[
        Optional[int], typer.Option(min=1, max=MAX_REPLICATIONS, help="independent replications")
    ] = None,
    seed: Annotated[Optional[int], typer.Option(min=0, help="random seed (same seed, same numbers)")] = None,
    jobs: Annotated[
        int,
        typer.Option(min=1, help="replications simulated in parallel processes (at most one per replication and CPU)"),
    ] = 1,
    json_path: Annotated[
        Optional[str],
        typer.Option(
            "--json",
            help="write the summary JSON to PATH, or - for stdout. A symbolic link is followed (the file it points "
            "to is replaced, the link kept); a stream, device or FIFO is written directly",
        ),
    ] = None,
    out: Annotated[
        Optional[Path],
        typer.Option(
            help="folder for summary.json, stats.csv, requests.parquet and timeseries.csv/.parquet. A previous run's "
            "files there are removed when the simulation starts, and a file INCOMPLETE marks the folder until all "
            "are written"
        ),
    ] = None,
    plots: Annotated[
        Optional[Path], typer.Option(help="folder for PNG plots of the monitoring time series (replication 0)")
    ] = None,
    report: Annotated[
        Optional[Path],
        typer.Option(help="folder for the run's report: report.html (self-contained, plots embedded), report.md and plots/"),
    ] = None,
    fail_on_slo: Annotated[
        bool,
        typer.Option(help="exit 1 when a class's SLO verdict is violated, 4 when none is but one is inconclusive"),
    ] = False,
    quiet: Annotated[bool, typer.Option(help="no progress bar (or, outside a terminal, progress lines)")] = False,
    engine: Annotated[
        Literal["auto", "simpy", "fast"],
        typer.Option(
            help="auto: the compiled fast engine wherever it simulates the scenario exactly (the same numbers, sooner), "
            "else the SimPy model; simpy or fast: that one (fast names what rules it out)"
        ),
    ] = "auto",
    analytic: Annotated[
        bool, typer.Option(help="print queueing theory beside the simulated figures where a formula applies; flag differences beyond the CI")
    ] = False,
    band: Annotated[
        bool, typer.Option(help="with a calibrated node: also simulate its calibration's variants (each run alone, the "
                           "profile's drift) and print the prediction band they give")
    ] = True,
) -> None:
    """Simulate a scenario: latency per class, real-time ratios, utilization, with confidence intervals.

    Every output path is checked before the simulation starts, so a typo there never costs a run.
    """
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from simulator.files import check_output_file, check_output_folder, check_output_not_input, standard_stream
    from simulator.report.table import print_summary
    from simulator.runner.api import run as run_scenario
    from simulator.runner.outputs import RUN_FILES, prepare_run_folder, write_run_outputs
    from simulator.runner.plan import plan_run
    from simulator.scenario.loader import load_scenario

    with _user_errors():
        loaded = load_scenario(scenario)
        plan = plan_run(loaded, seed, replications, requests, engine)
        if json_path == "":
            raise typer.BadParameter("give a file path, or - for stdout", param_hint="--json")
        json_stream = standard_stream(json_path) if json_path else None
        if json_path and json_stream is None:
            check_output_file(Path(json_path))
            check_output_not_input(Path(json_path), [scenario], "--json")
        for folder in (out, plots, report):
            if folder is not None:
                check_output_folder(folder)
        for name in RUN_FILES if out is not None else ():
            check_output_not_input(out / name, [scenario], "--out")
        if report is not None:
            from simulator.report.render import HTML_FILE, MARKDOWN_FILE

            for name in (HTML_FILE, MARKDOWN_FILE):
                check_output_not_input(report / name, [scenario], "--report")
        jobs = _bounded_jobs(jobs, plan.replications)
        console = _console(to_stderr=json_stream is sys.stdout)
        if out is not None:
            prepare_run_folder(out)
        description = f"simulating {_shown(loaded.name)}"
        total = plan.requests * plan.replications
        with Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
            console=stderr, transient=True, disable=quiet or not stderr.is_terminal,
        ) as progress:
            task = progress.add_task(plain(description), total=total)
            report_progress = (
                None if quiet else partial(progress.advance, task) if stderr.is_terminal else _progress_lines(description, total)
            )
            result = run_scenario(
                loaded, seed=seed, replications=replications, requests=requests, jobs=jobs,
                records_path=out / "requests.parquet" if out else None,
                progress=report_progress,
                monitor=out is not None or plots is not None or report is not None,
                engine=engine, band=band,
            )
        print_summary(result.summary, console)
        _print_band(result.summary.get("prediction_band"), console)
        if json_stream is not None:
            json_stream.write(result.to_json() + "\n")
            json_stream.flush()
        elif json_path:
            result.write_json(Path(json_path))
        if out is not None:
            written = write_run_outputs(result, out)
            console.print(plain(f"wrote {', '.join(str(path) for path in written)}"))
        timeseries = result.timeseries
        first = None if timeseries is None else timeseries[timeseries["replication"] == 0].drop(columns="replication").set_index("window")
        deadlines_ms = {c.name: c.deadline_ms for c in loaded.workload.classes if c.deadline_ms is not None}
        if plots is not None:
            from simulator.report.plots import plot_timeseries

            paths = plot_timeseries(first, plots, f"{loaded.name} (replication 0)", deadlines_ms)
            console.print(plain(f"plotted {len(paths)} figures into {plots}"))
        if report is not None:
            from simulator.report.run import write_run_report
            from simulator.runner.outputs import scenario_record

            summary = result.summary
            command = (f"latsim run {shlex.quote(str(scenario))} --seed {summary['seed']} --replications {summary['replications']} "
                       f"--requests {summary['requests_per_replication']} --engine {summary['engine']} --report REPORT")
            written = write_run_report(summary, first, {**scenario_record(loaded), "command": command}, deadlines_ms, report)
            console.print(plain(f"wrote the report: {written[0]} and {written[1]}"), highlight=False)
        if analytic:
            from simulator.analysis.analyze import analyze as analyze_scenario

            _print_analytic(analyze_scenario(loaded, seed), result, console)
    if fail_on_slo:
        verdicts = {entry["slo"]["verdict"] for entry in result.summary["classes"].values() if "slo" in entry}
        if "violated" in verdicts:
            raise typer.Exit(EXIT_SLO_VIOLATED)
        if "inconclusive" in verdicts:
            raise typer.Exit(EXIT_SLO_INCONCLUSIVE)


def _print_band(band: dict | None, console: Console) -> None:
    """The calibration's prediction band, a line per class: where the latency may lie as the calibration's uncertain inputs move."""
    if not band:
        return
    sources = " and ".join(f"{count} {'run(s) alone' if source == 'runs' else 'ends of the profile drift'}" for source, count in band["sources"].items())
    console.print(plain(f"prediction band from the calibration ({sources}), in ms:"), highlight=False)
    for name, statistics in band["classes"].items():
        ranges = ", ".join(f"{key} {low:.4g}–{high:.4g}" if low is not None else f"{key} —" for key, (low, high) in statistics.items())
        console.print(plain(f"  {name}: {ranges}"), highlight=False)


def _validate_plan_space(path: Path, loaded: object) -> list[int]:
    """A plan scenario is checked over its space, not its base node (which the plan varies): every configuration at the
    top target load. Those that cannot keep up are named (the plan rules them out); unstable only if every one is."""
    from simulator.planning.api import space_loads

    rate, found = space_loads(loaded)
    searched = [(label, load) for label, load in found if load is not None]
    overloaded = [f"{label} (offered load {load:.3f})" for label, load in searched if load >= 1]
    summary = (f"{path} — '{_shown(loaded.name)}', a plan over {len(found)} configuration(s) at {rate:,.6g}/s: "
               f"{len(searched) - len(overloaded)} can keep up")
    shown = "; ".join(overloaded[:5]) + (f"; and {len(overloaded) - 5} more" if len(overloaded) > 5 else "")
    if searched and len(overloaded) == len(searched):
        _print_error("unstable", f"{summary}; every one is overloaded at the target: {shown}. Widen the space (more replicas, "
                     "workers or faster hardware) or lower the target load")
        return [EXIT_UNSTABLE]
    if not searched:
        _print_error("error", f"{summary}; every configuration is excluded: " + "; ".join(label for label, _ in found[:5]))
        return [EXIT_BAD_INPUT]
    typer.echo(visible(f"ok: {summary}" + (f"; overloaded there (the plan rules them out): {shown}" if overloaded else "")))
    return []


@app.command()
def validate(scenarios: Annotated[list[Path], typer.Argument(help="scenario YAML files")]) -> None:
    """Check scenario files without simulating: every check `run` makes before it simulates, on every file given.

    Each file gets an `ok` line or its errors (naming the file, the field and what is allowed). Exit
    code 2 if any file has bad input, else 3 if any is unstable, else 0.
    """
    from simulator.runner.checks import check_stability
    from simulator.runner.plan import plan_run
    from simulator.scenario.loader import load_scenario

    codes = []
    for path in scenarios:
        try:
            loaded = load_scenario(path)
            if loaded.plan is not None:
                codes += _validate_plan_space(path, loaded)
                continue
            load = check_stability(plan_run(loaded))
        except LatsimError as error:
            codes.append(_report(error))
            continue
        typer.echo(visible(
            f"ok: {path} — '{_shown(loaded.name)}', {len(loaded.workload.classes)} class(es), "
            f"{len(loaded.node_names())} node(s), offered load {load:.3f}"
        ))
    if codes:
        if len(scenarios) > 1:
            stderr.print(f"{len(codes)} of {len(scenarios)} files have problems", highlight=False)
        raise typer.Exit(EXIT_BAD_INPUT if EXIT_BAD_INPUT in codes else EXIT_UNSTABLE)


@app.command()
def schema(
    request_log: Annotated[bool, typer.Option("--request-log", help="the schema of one request-log record instead")] = False,
) -> None:
    """Print the JSON Schema of scenario files (for editor autocompletion and validation), or of request logs."""
    if request_log:
        from simulator.formats.request_log import request_log_schema

        typer.echo(json.dumps(request_log_schema(), indent=2))
        return
    from simulator.scenario.schema import Scenario

    typer.echo(json.dumps(Scenario.model_json_schema(), indent=2))


@app.command()
def calibrate(
    logs: Annotated[list[Path], typer.Argument(help="request logs (.parquet, .csv, .jsonl), one run each")],
    scenario: Annotated[Path, typer.Option(help="the scenario whose node served these requests (its service model is the reference)")],
    out: Annotated[Path, typer.Option(help="calibration YAML to write (outside-time CSV files go beside it)")],
    node: Annotated[Optional[str], typer.Option(help="the node spec the logs measured (default: the scenario's only one)")] = None,
    server: Annotated[str, typer.Option(help="what served the logs (hardware, framework), recorded in the file")] = "",
    time_unit: Annotated[str, typer.Option(help="what the logs' *_ms columns hold: ms, s, us or ns")] = "ms",
) -> None:
    """Fit a real server's machine — speed process, overhead by occupancy, concurrency slowdown, time outside the
    server — from its request logs, as a calibration file that nodes[].calibration and plans take.

    """
    from simulator.files import check_output_file
    from simulator.fitting.from_logs import write_calibration_from_logs
    from simulator.scenario.loader import load_scenario

    with _user_errors():
        check_output_file(out)
        if any(path.resolve() == out.resolve() for path in [*logs, scenario]):
            raise LatsimError(f"--out {out} is one of the inputs; write the calibration elsewhere")
        loaded = load_scenario(scenario)
        written, fitted_on = write_calibration_from_logs(
            logs, loaded, out, node=node, server=server, time_unit=time_unit, progress=lambda line: stderr.print(plain(line), highlight=False)
        )
        method = fitted_on["method"].replace("_", "-")
        low, high = fitted_on["rate_per_s"]
        typer.echo(f"wrote {written}: {method} calibration from {len(logs)} run(s), "
                   f"{fitted_on['requests']:,} served requests at {low:.4g}–{high:.4g}/s")


@app.command()
def plan(
    scenario: Annotated[Path, typer.Argument(help="scenario YAML file with a plan: block")],
    out: Annotated[
        Path,
        typer.Option(help="results folder: points.sqlite (every finished point; running again resumes from it) and plan.json"),
    ],
    report: Annotated[Optional[Path], typer.Option(help="also write the capacity report (HTML, Markdown, PNG plots) into this folder")] = None,
    jobs: Annotated[
        Optional[int], typer.Option(min=1, max=4096, help="local worker processes (default: every CPU; 1: in this process)")
    ] = None,
    dask_local: Annotated[
        Optional[int], typer.Option("--dask-local", min=1, max=4096, help="run the points on a Dask LocalCluster of N worker processes")
    ] = None,
    scheduler: Annotated[
        Optional[str], typer.Option(help="run the points on an existing Dask cluster, e.g. tcp://10.0.0.5:8786")
    ] = None,
    seed: Annotated[Optional[int], typer.Option(min=0, help="random seed of every point (default: the scenario's run.seed)")] = None,
    exhaustive: Annotated[
        bool, typer.Option(help="check the search: simulate every point of the space at full length (slow), no pruning")
    ] = False,
    quiet: Annotated[bool, typer.Option(help="no progress bar (or, outside a terminal, progress lines)")] = False,
) -> None:
    """Capacity plan: the cheapest configuration of the scenario's plan: space that meets its SLOs at the target load,
    and each candidate's maximum sustainable load. Exit 1 when no configuration meets the SLOs."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from simulator.files import check_output_folder, check_output_not_input
    from simulator.planning.api import RESULT_FILE
    from simulator.planning.api import plan as plan_capacity
    from simulator.planning.store import STORE_FILE
    from simulator.runner.executors import make_executor
    from simulator.scenario.loader import load_scenario

    with _user_errors():
        if dask_local is not None and scheduler is not None:
            raise typer.BadParameter("give --dask-local N or --scheduler ADDRESS, not both")
        if jobs is not None and (dask_local is not None or scheduler is not None):
            raise typer.BadParameter("--jobs sets local processes; with Dask, --dask-local sets the workers")
        loaded = load_scenario(scenario)
        if seed is not None:
            loaded = loaded.replace("run.seed", seed)
        for folder in (out, report):
            if folder is not None:
                check_output_folder(folder)
        for name in (RESULT_FILE, STORE_FILE):
            check_output_not_input(out / name, [scenario], "--out")
        kind = "dask" if dask_local is not None or scheduler is not None else "inprocess" if jobs == 1 else "processes"
        command = f"latsim plan {scenario} --out {out}" + (f" --seed {seed}" if seed is not None else "") + (" --exhaustive" if exhaustive else "")
        console = _console(to_stderr=False)
        with make_executor(kind, dask_local or jobs, scheduler) as executor, Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
            console=stderr, transient=True, disable=quiet or not stderr.is_terminal,
        ) as progress:
            description = f"planning {_shown(loaded.name)} (points done / at most)"
            task = progress.add_task(plain(description), total=None)
            started = last = time.monotonic()

            def advance(done: int, bound: int) -> None:
                """The bound on the plan's points only falls as the search learns, so done / bound never passes 100 %."""
                nonlocal last
                progress.update(task, completed=done, total=bound)
                now = time.monotonic()
                if not quiet and not stderr.is_terminal and now - last >= PROGRESS_LINE_EVERY_S:
                    last = now
                    left = f", at most about {(now - started) / done * (bound - done):.0f} s left" if 0 < done < bound else ""
                    stderr.print(plain(f"{description}: {done:,} of at most {bound:,} points ({done / bound:.1%}){left}"),
                                  highlight=False)

            stderr.print(plain(f"planning {_shown(loaded.name)} on {executor.describe()}"), highlight=False)
            document = plan_capacity(loaded, out, executor, progress=advance, exhaustive=exhaustive, command=command)
        _print_plan(document, console)
        console.print(plain(f"wrote {out / 'plan.json'} (and {out / 'points.sqlite'}, the points: running again resumes)"), highlight=False)
        if report is not None:
            from simulator.report.capacity import write_report

            written = write_report(out, report)
            console.print(plain(f"wrote the report: {written[0]} and {written[1]}"), highlight=False)
    if not document["finalists"]:
        raise typer.Exit(EXIT_SLO_VIOLATED)


def _print_plan(document: dict, console: Console) -> None:
    """The answer of a plan in a few lines: the best configurations, validity, what the search did."""
    from simulator.report.render import headroom, interval, number, percent

    configurations = {config["id"]: config for config in document["configurations"]}
    for rank, identifier in enumerate(document["finalists"], start=1):
        config = configurations[identifier]
        bounds = "; ".join(f"{item['label']}: {interval(item)} ({percent(item['margin'])})" for item in config["full"]["items"])
        console.print(plain(f"{rank}. {config['label']} ({identifier}): {number(config['cost_per_hour'])} per hour; {bounds}"), highlight=False)
    if document["winner"] is not None and document["winner"]["max_load"] is not None:
        found = document["winner"]["max_load"]
        console.print(plain(
            f"   maximum sustainable load {number(found['low_per_s'])}–{number(found['high_per_s'])} requests/s ({headroom(found['headroom_percent'])})"
        ), highlight=False)
    for config in document.get("inconclusive_cheaper", []):
        bounds = "; ".join(f"{item['label']}: {interval(item)}" for item in config["items"] if item["verdict"] != "met")
        console.print(plain(f"   cheaper but inconclusive: {config['label']} ({config['id']}): {number(config['cost_per_hour'])} per hour; {bounds}"), highlight=False)
    if not document["finalists"]:
        console.print("no configuration of the space meets every SLO at the target load", highlight=False)
    console.print("[bold green]VALID[/]" if document["valid"] else "[bold red]INVALID:[/] " + plain("; ".join(document["invalid_reasons"])))
    search = document["search"]
    skipped = ", ".join(f"{category} {count}" for category, count in search["not_confirmed"].items()) or "none"
    console.print(plain(
        f"{document['inputs']['space_size']:,} configurations; never confirmed at full length: {skipped}; "
        f"{search['points_simulated']:,} points simulated, {search['points_reused']:,} reused, in {search['seconds']:.1f} s"
    ), highlight=False)


@app.command()
def report(
    results: Annotated[Path, typer.Argument(help="a plan's results folder (latsim plan --out)")],
    out: Annotated[Optional[Path], typer.Option(help="folder for report.html, report.md and plots/ (default: RESULTS/report)")] = None,
) -> None:
    """Capacity report of a plan: one self-contained HTML page (plots embedded, opens offline) and its Markdown twin."""
    from simulator.report.capacity import write_report

    with _user_errors():
        written = write_report(results, out)
        typer.echo(visible(f"wrote {written[0]}, {written[1]} and {len(written) - 2} plots"))


def _print_frame(frame: object, console: Console, title: str, keys: int = 1) -> None:
    """A DataFrame as a terminal table fitted to the width (``keys`` leading columns repeated if split): numbers to
    4 significant digits, missing values as a dash."""
    from simulator.report.table import Column, print_table

    rows = [
        ["—" if value is None or value != value else f"{value:.4g}" if isinstance(value, float) else plain(str(value)) for value in row]
        for row in frame.itertuples(index=False)
    ]
    numeric = [frame[column].dtype.kind in "iuf" for column in frame.columns]
    columns = [Column(str(name), "right" if is_number else "left", free=not is_number and index >= keys)
               for index, (name, is_number) in enumerate(zip(frame.columns, numeric))]
    print_table(console, plain(title), columns, rows, keys=keys)


@app.command()
def fit(
    source: Annotated[
        Path, typer.Argument(help="profile bundle (folder or metadata.json), a CSV/parquet file of at most 100,000 times in ms, or a testbed campaign folder")
    ],
    out: Annotated[
        Path, typer.Option(help="fitted-model YAML file to write (scenarios use it: distribution: fitted); a campaign's calibration")
    ],
    family: Annotated[
        Optional[list[str]],
        typer.Option("--family", "-f", help="families to fit (default: all); for a samples file, the name of its one cell"),
    ] = None,
    variant: Annotated[
        Optional[list[str]], typer.Option("--variant", "-v", help="variants to fit (default: all); samples file: its name")
    ] = None,
    batch_size: Annotated[Optional[list[int]], typer.Option("--batch-size", min=1, help="batch sizes to fit (default: all)")] = None,
    stage: Annotated[
        Optional[list[str]],
        typer.Option(help="stages to fit (default: end_to_end, compute, h2d, d2h, load, first_call; overhead on request)"),
    ] = None,
    threads: Annotated[Optional[list[int]], typer.Option(min=1, help="thread counts to fit (default: the bundle's serving count)")] = None,
    column: Annotated[Optional[str], typer.Option(help="samples file: the column of times (default: the only one)")] = None,
    expression: Annotated[
        Optional[str], typer.Option(help="samples file: times as an expression of columns, e.g. 'latency_ms - service_ms'")
    ] = None,
    candidates: Annotated[
        Optional[list[str]], typer.Option(help="candidate families (default: all), e.g. gamma,lognormal,lognormal3")
    ] = None,
    latency_budget_ms: Annotated[
        Optional[float], typer.Option(min=1e-6, max=1e9, help="best batch size: the highest throughput whose batch time fits this budget")
    ] = None,
    plots: Annotated[Optional[Path], typer.Option(help="folder for diagnostic plots of each fitted group")] = None,
    jobs: Annotated[int, typer.Option(min=1, max=256, help="cells fitted in parallel processes (identical results)")] = 1,
    seed: Annotated[int, typer.Option(min=0, help="seed of the bootstraps and simulations (same seed, same file)")] = 0,
    quiet: Annotated[bool, typer.Option(help="no progress bar (or, outside a terminal, progress lines)")] = False,
) -> None:
    """Fit service-time models to measured times: candidate laws per cell chosen by AIC and tail fit, batch-size
    curves, the service process (autocorrelation, drift, block length, hidden Markov chain, whether order changes
    the p99), concurrency slowdown. Writes a fitted-model file that scenarios reference. From a testbed campaign
    (latsim testbed run --out), it fits the machine instead and writes its calibration (as latsim testbed calibrate)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from simulator.files import check_output_file, check_output_folder, check_output_not_input, path_component
    from simulator.fitting.candidates import FAMILIES, PVALUE_CAVEAT
    from simulator.fitting.fitted_models import FitSettings, fit_bundle, fit_samples_file
    from simulator.fitting.summary import choice_counts, fitted_summary
    from simulator.formats.fitted import write_fitted
    from simulator.formats.profile_bundle import METADATA_FILE, SAMPLES_FILE
    from simulator.profiling.command import _names
    from simulator.testbed.campaign_file import is_campaign

    with _user_errors():
        check_output_file(out)
        if is_campaign(source):
            bundle_options = {"--family": family, "--variant": variant, "--batch-size": batch_size, "--stage": stage,
                              "--threads": threads, "--column": column, "--expression": expression,
                              "--candidates": candidates, "--latency-budget-ms": latency_budget_ms, "--plots": plots}
            given = [name for name, value in bundle_options.items() if value is not None]
            if given:
                raise typer.BadParameter(f"a testbed campaign is fitted whole; {', '.join(given)} apply to bundles and samples files")
            from simulator.testbed.calibrate import write_calibration

            written = write_calibration(source, out)
            typer.echo(visible(f"wrote {written}: the machine the campaign measured (overhead by occupancy; per level the speed "
                               "process, concurrency slowdown and outside time) as scenario settings; testbed compare --calibration uses it"))
            return
        for option, names in (("--family", _names(family)), ("--variant", _names(variant))):
            for name in names or ():
                path_component(name, option)
        is_bundle = source.is_dir() or source.name == "metadata.json"
        bundle_folder = source if source.is_dir() else source.parent
        check_output_not_input(out, [bundle_folder / METADATA_FILE, bundle_folder / SAMPLES_FILE] if is_bundle else [source], "--out")
        if plots is not None:
            check_output_folder(plots)
        chosen_families = _names(candidates)
        unknown = sorted(set(chosen_families or ()) - set(FAMILIES))
        if unknown:
            raise typer.BadParameter(f"unknown families {unknown}; choose from {', '.join(FAMILIES)}", param_hint="--candidates")
        settings = FitSettings(
            families=tuple(chosen_families or FAMILIES), seed=seed, latency_budget_ms=latency_budget_ms,
            jobs=_bounded_jobs(jobs, jobs),
        )
        console = _console(to_stderr=False)
        started = time.monotonic()
        with Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
            console=stderr, transient=True, disable=quiet or not stderr.is_terminal,
        ) as progress:
            task = progress.add_task(plain(f"fitting {source}"), total=None)
            lines: list[Callable[[int], None]] = []  # outside a terminal: progress lines, once the number of cells is known

            def on_work(cells: int) -> None:
                progress.update(task, total=cells)
                if not quiet and not stderr.is_terminal:
                    lines.append(_progress_lines(f"fitting {source}", cells, "cells"))

            def advance(cells: int) -> None:
                progress.advance(task, cells)
                for line in lines:
                    line(cells)

            if is_bundle:
                if column or expression:
                    raise typer.BadParameter("a profile bundle has no columns to choose", param_hint="--column/--expression")
                models = fit_bundle(
                    source, settings, _names(family), _names(variant), batch_size, _names(stage), threads,
                    relative_to=out.resolve().parent, progress=advance, on_work=on_work, plots=plots,
                )
            else:
                names, variants = _names(family) or [None], _names(variant) or ["measured"]
                if len(names) > 1 or len(variants) > 1:
                    raise typer.BadParameter("a samples file is one cell: give one --family and one --variant name")
                models = fit_samples_file(
                    source, column, expression, names[0], variants[0], settings, out.resolve().parent, plots,
                    progress=advance, on_work=on_work,
                )
        _print_frame(fitted_summary(models), console, f"Fitted {source} (per group, at its smallest batch size)")
        console.print(plain(choice_counts(models)), highlight=False)
        console.print(plain(f"note: {PVALUE_CAVEAT}"), highlight=False)
        write_fitted(out, models)
        console.print(
            plain(f"wrote {out}: {len(models.cells)} cells, {len(models.groups)} groups, in {time.monotonic() - started:.1f} s"),
            highlight=False,
        )
        if plots is not None:
            console.print(plain(f"plotted diagnostics into {plots}"), highlight=False)


def _print_analytic(report: object, result: object | None, console: Console) -> None:
    """Theory beside simulation (``result``, if any): one row per prediction, then what the scenario rules out."""
    frame = report.to_frame() if result is None else report.compare(result)
    if result is not None:
        frame["simulated [CI]"] = [
            "—" if estimate != estimate else f"{estimate:.4g} [{low:.4g}, {high:.4g}]"
            for estimate, low, high in zip(frame["estimate"], frame["ci_low"], frame["ci_high"])
        ]
        frame = frame[["scope", "name", "metric", "value", "simulated [CI]", "verdict", "kind", "formula"]]
    if len(frame):
        _print_frame(frame.rename(columns={"value": "theory"}), console, f"Queueing theory for {report.scenario}", keys=3)
    else:
        console.print(plain(f"No formula applies to {report.scenario}."), highlight=False)
    for ruled in report.ruled_out:
        console.print(plain(f"ruled out ({ruled.scope} {ruled.name}): {ruled.reason}"), highlight=False)
    if result is not None and (frame["verdict"] == "beyond CI").any():
        console.print("[bold red]theory and simulation differ beyond the CI[/] on the rows marked 'beyond CI'", highlight=False)


@app.command()
def analyze(
    scenario: Annotated[Path, typer.Argument(help="scenario YAML file")],
    simulate: Annotated[bool, typer.Option(help="also simulate (with the scenario's run settings), to compare")] = True,
    requests: Annotated[Optional[int], typer.Option(min=1, max=MAX_REQUESTS, help="measured requests per replication")] = None,
    replications: Annotated[Optional[int], typer.Option(min=1, max=MAX_REPLICATIONS, help="independent replications")] = None,
    seed: Annotated[Optional[int], typer.Option(min=0, help="random seed")] = None,
    quiet: Annotated[bool, typer.Option(help="no progress lines while simulating")] = False,
) -> None:
    """Queueing theory for a scenario, per class and node: the exact formula, an approximation or a bound where one
    applies (beside the simulated value unless --no-simulate), and which assumption rules out the others."""
    from simulator.analysis.analyze import analyze as analyze_scenario
    from simulator.runner.api import run as run_scenario
    from simulator.runner.plan import plan_run
    from simulator.scenario.loader import load_scenario

    with _user_errors():
        loaded = load_scenario(scenario)
        report = analyze_scenario(loaded, seed)
        result = None
        if simulate:
            plan = plan_run(loaded, seed, replications, requests)
            progress = None if quiet else _progress_lines(f"simulating {_shown(loaded.name)}", plan.requests * plan.replications)
            result = run_scenario(loaded, seed=seed, replications=replications, requests=requests, progress=progress)
        _print_analytic(report, result, _console(to_stderr=False))
        if report.unstable:  # exit 3, as run does: there is no steady state to describe
            overloaded = "; ".join(f"node {ruled.name}: {ruled.reason}" for ruled in report.unstable[:5])
            raise UnstableSystemError(f"{loaded.source}: {overloaded}")


EXAMPLES = {  # each command's --help ends with these; tests/test_cli_conventions.py checks every one and runs the cheap ones
    "run": ["latsim run scenarios/quickstart.yaml",
            "latsim run scenarios/serving-cluster.yaml --jobs 4 --out results/cluster --plots results/cluster/plots",
            "latsim run scenarios/quickstart.yaml --report results/quickstart-report"],
    "validate": ["latsim validate scenarios/quickstart.yaml scenarios/serving-cluster.yaml"],
    "schema": ["latsim schema > scenario.schema.json", "latsim schema --request-log > request-log.schema.json"],
    "calibrate": ["latsim calibrate logs/run-*.parquet --scenario scenarios/testbed-cnn-fifo.yaml --out calibration/cnn.yaml",
                  "latsim calibrate logs/*.jsonl --scenario my-server.yaml --out cal.yaml --time-unit s --server 'FastAPI, 4 cores'"],
    "plan": ["latsim plan scenarios/plan-cpu.yaml --out results/plan-cpu --report results/plan-cpu/report"],
    "report": ["latsim report results/plan-cpu --out results/plan-cpu/report"],
    "fit": ["latsim fit profiles/cpu-amd-epyc-2c-avx512/zoo --family cnn --out fitted-cnn.yaml --jobs 2"],
    "analyze": ["latsim analyze scenarios/theory-mmc.yaml", "latsim analyze scenarios/quickstart.yaml --no-simulate"],
    "profile": ["latsim profile --family cnn --variant fp32 --quick", "latsim profile --table profiles/cpu-amd-epyc-2c-avx512/zoo"],
    "testbed serve": ["latsim testbed serve scenarios/testbed-cnn-fifo.yaml --out results/server"],
    "testbed load": ["latsim testbed load scenarios/testbed-cnn-fifo.yaml --url http://127.0.0.1:8000 --rate 50 --out results/client"],
    "testbed run": ["latsim testbed run scenarios/testbed-cnn-fifo.yaml --out campaigns/cnn-fifo --levels 0.3,0.5,0.7"],
    "testbed calibrate": ["latsim testbed calibrate campaigns/cnn-fifo --out calibration.yaml"],
    "testbed compare": ["latsim testbed compare campaigns/cnn-fifo --calibration calibration.yaml"],
    "testbed capacity": ["latsim testbed capacity scenarios/testbed-cnn-fifo.yaml --slo 'p99<=25' --low 100 --high 800 --out results/capacity",
                         "latsim testbed capacity my-server.yaml --url http://127.0.0.1:8000 --slo 'p99<=50' --low 50 --high 500 "
                         "--out results/capacity --calibration cal.yaml"],
}


def _add_examples() -> None:
    """Each command's examples as its --help epilog (one paragraph per example, so they keep their lines)."""
    for prefix, typer_app in (("", app), ("testbed ", testbed_app)):
        for info in typer_app.registered_commands:
            name = prefix + (info.name or info.callback.__name__.replace("_", "-"))
            info.epilog = "Examples:\n\n" + "\n\n".join(EXAMPLES[name])


_add_examples()


def main() -> None:
    """The ``latsim`` program: the commands, plus a one-line report of interrupts and internal errors.

    An unexpected exception is a bug: without ``--debug`` it prints ``internal error: ...`` and
    exits 70; with ``--debug`` its traceback is shown.
    """
    global _in_main
    if _handler_pid != os.getpid():
        _install_interrupt_handlers()
    _in_main = True
    try:
        app()
    except Interrupted as interrupted:
        _say_interrupted(interrupted.signum)
        _exit_now(128 + interrupted.signum)
    except LatsimError as error:  # a command without its own handler: still a plain message and exit 2 or 3
        sys.exit(_report(error))
    except Exception as error:
        if _debug:
            raise
        _print_error(
            "internal error",
            f"{type(error).__name__}: {error} — this is a bug in latsim, please report it; rerun with --debug for the traceback",
        )
        sys.exit(EXIT_INTERNAL)
