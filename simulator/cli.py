"""The ``latsim`` command line: one command per pipeline stage.

Each command imports what it needs when it runs, so ``latsim --help``, ``schema`` and
``validate`` start without numpy's heavier neighbours (scipy, pandas, matplotlib).
"""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape

from simulator.errors import LatsimError, UnstableSystemError
from simulator.profiling.command import profile_command

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

EXIT_SLO_MISSED = 1
EXIT_BAD_INPUT = 2
EXIT_UNSTABLE = 3


def _console(to_stderr: bool) -> Console:
    probe = Console(stderr=to_stderr)
    return probe if probe.is_terminal else Console(stderr=to_stderr, width=TABLE_WIDTH)


@contextmanager
def _user_errors():
    """Errors a user can fix are printed plainly (no traceback) with a distinct exit code."""
    try:
        yield
    except UnstableSystemError as error:
        stderr.print(f"[bold red]unstable system:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_UNSTABLE) from None
    except LatsimError as error:
        stderr.print(f"[bold red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None


@app.command()
def run(
    scenario: Annotated[Path, typer.Argument(help="scenario YAML file")],
    requests: Annotated[Optional[int], typer.Option(min=1, help="measured requests per replication")] = None,
    replications: Annotated[Optional[int], typer.Option(min=1, help="independent replications")] = None,
    seed: Annotated[Optional[int], typer.Option(help="random seed (same seed, same numbers)")] = None,
    jobs: Annotated[int, typer.Option(min=1, help="replications simulated in parallel processes")] = 1,
    json_path: Annotated[Optional[str], typer.Option("--json", help="write the summary JSON to PATH, or - for stdout")] = None,
    out: Annotated[
        Optional[Path],
        typer.Option(help="folder for summary.json, stats.csv, requests.parquet and timeseries.csv/.parquet"),
    ] = None,
    plots: Annotated[
        Optional[Path], typer.Option(help="folder for PNG plots of the monitoring time series (replication 0)")
    ] = None,
    fail_on_slo: Annotated[bool, typer.Option(help="exit 1 when a class misses its real-time requirement")] = False,
    quiet: Annotated[bool, typer.Option(help="no progress bar")] = False,
) -> None:
    """Simulate a scenario: latency per class, real-time ratios, utilization, with confidence intervals."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from simulator.report.table import print_summary
    from simulator.runner.api import run as run_scenario
    from simulator.runner.outputs import write_run_outputs
    from simulator.runner.plan import plan_run
    from simulator.scenario.loader import load_scenario

    with _user_errors():
        loaded = load_scenario(scenario)
        plan = plan_run(loaded, seed, replications, requests)
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
        console = _console(to_stderr=json_path == "-")
        with Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
            console=stderr, transient=True, disable=quiet,
        ) as progress:
            task = progress.add_task(f"simulating {loaded.name}", total=plan.requests * plan.replications)
            result = run_scenario(
                loaded, seed=seed, replications=replications, requests=requests, jobs=jobs,
                records_path=out / "requests.parquet" if out else None,
                progress=lambda finished: progress.advance(task, finished),
                monitor=out is not None or plots is not None,
            )
        print_summary(result.summary, console)
        if json_path == "-":
            sys.stdout.write(result.to_json() + "\n")
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
    if fail_on_slo and any(
        entry.get("slo", {}).get("met") is False for entry in result.summary["classes"].values()
    ):
        raise typer.Exit(EXIT_SLO_MISSED)


@app.command()
def validate(scenarios: Annotated[list[Path], typer.Argument(help="scenario YAML files")]) -> None:
    """Check scenario files without simulating; errors name the file, the field and what is allowed."""
    from simulator.model.build import node_names
    from simulator.runner.checks import check_stability
    from simulator.runner.plan import plan_run
    from simulator.scenario.loader import load_scenario

    with _user_errors():
        for path in scenarios:
            loaded = load_scenario(path)
            load = check_stability(plan_run(loaded))
            typer.echo(
                f"ok: {path} — {loaded.name!r}, {len(loaded.workload.classes)} class(es), "
                f"{len(node_names(loaded))} node(s), offered load {load:.3f}"
            )


@app.command()
def schema() -> None:
    """Print the JSON Schema of scenario files (for editor autocompletion and validation)."""
    from simulator.scenario.schema import Scenario

    typer.echo(json.dumps(Scenario.model_json_schema(), indent=2))


def main() -> None:
    app()
