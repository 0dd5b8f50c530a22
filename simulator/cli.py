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
import time  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from functools import partial  # noqa: E402
from typing import Annotated, Optional  # noqa: E402

import typer  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.markup import escape  # noqa: E402

from simulator.errors import LatsimError, UnstableSystemError  # noqa: E402
from simulator.profiling.command import profile_command  # noqa: E402

app = typer.Typer(
    name="latsim",
    help="Discrete-event latency simulator and capacity planner for real-time model serving.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
TABLE_WIDTH = 160  # when output is not a terminal (a file, a pipe, CI logs), print full-width tables
stderr = Console(stderr=True)
app.command("profile")(profile_command)  # torch is imported only when profiling runs

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


@app.callback()
def _global_options(
    debug: Annotated[
        bool, typer.Option("--debug", help="on an internal error, show its traceback instead of a one-line report")
    ] = False,
) -> None:
    global _debug
    _debug = debug


def _console(to_stderr: bool) -> Console:
    probe = Console(stderr=to_stderr)
    return probe if probe.is_terminal else Console(stderr=to_stderr, width=TABLE_WIDTH)


def _print_error(label: str, message: str) -> None:
    if len(message) > MAX_MESSAGE_CHARS:
        message = f"{message[:MAX_MESSAGE_CHARS]}… ({len(message) - MAX_MESSAGE_CHARS} more characters)"
    stderr.print(f"[bold red]{label}:[/] {escape(message)}", highlight=False, soft_wrap=True)


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
    """A scenario's name as progress and ``validate`` lines show it: cut to ``limit`` characters."""
    return name if len(name) <= limit else name[: limit - 1] + "…"


def _bounded_jobs(jobs: int, replications: int) -> int:
    """``--jobs`` lowered to the replications and the CPUs there are (more processes only wait); says so when lowered."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    bounded = max(1, min(jobs, replications, cpus))
    if bounded < jobs:
        stderr.print(f"note: --jobs {jobs} lowered to {bounded} ({replications} replication(s), {cpus} CPU(s))", highlight=False)
    return bounded


def _progress_lines(description: str, total: int) -> Callable[[int], None]:
    """Progress for a log or pipe (no live bar there): a line at the start and then every PROGRESS_LINE_EVERY_S."""
    done = 0
    last = time.monotonic()
    stderr.print(escape(f"{description}: {total:,} measured requests in all"), highlight=False)

    def advance(finished: int) -> None:
        nonlocal done, last
        done += finished
        now = time.monotonic()
        if now - last >= PROGRESS_LINE_EVERY_S:
            last = now
            stderr.print(escape(f"{description}: {done:,} of {total:,} measured requests ({done / total:.1%})"), highlight=False)

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
    fail_on_slo: Annotated[
        bool,
        typer.Option(help="exit 1 when a class's SLO verdict is violated, 4 when none is but one is inconclusive"),
    ] = False,
    quiet: Annotated[bool, typer.Option(help="no progress bar (or, outside a terminal, progress lines)")] = False,
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

    from simulator.files import check_output_file, check_output_folder, standard_stream
    from simulator.report.table import print_summary
    from simulator.runner.api import run as run_scenario
    from simulator.runner.outputs import prepare_run_folder, write_run_outputs
    from simulator.runner.plan import plan_run
    from simulator.scenario.loader import load_scenario

    with _user_errors():
        loaded = load_scenario(scenario)
        plan = plan_run(loaded, seed, replications, requests)
        if json_path == "":
            raise typer.BadParameter("give a file path, or - for stdout", param_hint="--json")
        json_stream = standard_stream(json_path) if json_path else None
        if json_path and json_stream is None:
            check_output_file(Path(json_path))
        for folder in (out, plots):
            if folder is not None:
                check_output_folder(folder)
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
            task = progress.add_task(escape(description), total=total)
            report_progress = (
                None if quiet else partial(progress.advance, task) if stderr.is_terminal else _progress_lines(description, total)
            )
            result = run_scenario(
                loaded, seed=seed, replications=replications, requests=requests, jobs=jobs,
                records_path=out / "requests.parquet" if out else None,
                progress=report_progress,
                monitor=out is not None or plots is not None,
            )
        print_summary(result.summary, console)
        if json_stream is not None:
            json_stream.write(result.to_json() + "\n")
            json_stream.flush()
        elif json_path:
            result.write_json(Path(json_path))
        if out is not None:
            written = write_run_outputs(result, out)
            console.print(escape(f"wrote {', '.join(str(path) for path in written)}"))
        if plots is not None:
            from simulator.report.plots import plot_timeseries

            timeseries = result.timeseries
            first = timeseries[timeseries["replication"] == 0].drop(columns="replication").set_index("window")
            paths = plot_timeseries(first, plots, f"{loaded.name} (replication 0)")
            console.print(escape(f"plotted {len(paths)} figures into {plots}"))
    if fail_on_slo:
        verdicts = {entry["slo"]["verdict"] for entry in result.summary["classes"].values() if "slo" in entry}
        if "violated" in verdicts:
            raise typer.Exit(EXIT_SLO_VIOLATED)
        if "inconclusive" in verdicts:
            raise typer.Exit(EXIT_SLO_INCONCLUSIVE)


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
            load = check_stability(plan_run(loaded))
        except LatsimError as error:
            codes.append(_report(error))
            continue
        typer.echo(
            f"ok: {path} — {_shown(loaded.name)!r}, {len(loaded.workload.classes)} class(es), "
            f"{len(loaded.node_names())} node(s), offered load {load:.3f}"
        )
    if codes:
        if len(scenarios) > 1:
            stderr.print(f"{len(codes)} of {len(scenarios)} files have problems", highlight=False)
        raise typer.Exit(EXIT_BAD_INPUT if EXIT_BAD_INPUT in codes else EXIT_UNSTABLE)


@app.command()
def schema() -> None:
    """Print the JSON Schema of scenario files (for editor autocompletion and validation)."""
    from simulator.scenario.schema import Scenario

    typer.echo(json.dumps(Scenario.model_json_schema(), indent=2))


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
        sys.exit(128 + interrupted.signum)
    except Exception as error:
        if _debug:
            raise
        _print_error(
            "internal error",
            f"{type(error).__name__}: {error} — this is a bug in latsim, please report it; rerun with --debug for the traceback",
        )
        sys.exit(EXIT_INTERNAL)
