"""The conventions people expect of a command line: ``--version``, shell completion, and an example in every
command's ``--help`` that names a real command and real options (the cheap ones are run here)."""

from __future__ import annotations

import importlib.metadata
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import typer
import typer.main
from typer.testing import CliRunner

from simulator.cli import app

REPO = Path(__file__).resolve().parent.parent
WIDE = {"COLUMNS": "1000"}  # an example on one line
_runner = CliRunner()
_root = typer.main.get_command(app)


def _is_group(command: object) -> bool:
    return hasattr(command, "list_commands")


def _leaves(group: object, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    for name in group.list_commands(typer.Context(group)):
        command = group.get_command(typer.Context(group), name)
        found += _leaves(command, (*prefix, name)) if _is_group(command) else [(*prefix, name)]
    return found


COMMANDS = _leaves(_root)


def _examples(path: tuple[str, ...]) -> list[str]:
    """The lines of ``latsim PATH --help`` after its ``Examples:`` heading that start with ``latsim``."""
    result = _runner.invoke(app, [*path, "--help"], env=WIDE)
    assert result.exit_code == 0, result.output
    text = result.output.split("Examples:", 1)[1] if "Examples:" in result.output else ""
    return [line.strip(" │") for line in text.splitlines() if line.strip(" │").startswith("latsim ")]


def _parse(example: str) -> tuple[object, list[str]]:
    """The command an example names and its arguments (a shell redirection cut off); parses them as latsim would."""
    words = shlex.split(example)
    words = words[: words.index(">")] if ">" in words else words
    assert words[0] == "latsim"
    command, arguments = _root, words[1:]
    while _is_group(command):
        name, arguments = arguments[0], arguments[1:]
        command = command.get_command(typer.Context(command), name)
        assert command is not None, f"{example}: no command {name!r}"
    with command.make_context(words[1], list(arguments)):  # unknown options, missing ones, bad values: a UsageError
        pass
    return command, words[1:]


def test_version_is_the_package_version():
    completed = subprocess.run([sys.executable, "-m", "simulator", "--version"], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout == f"latsim {importlib.metadata.version('latsim')}\n"


def test_shell_completion_is_offered():
    result = _runner.invoke(app, ["--help"], env=WIDE)
    assert "--install-completion" in result.output and "--show-completion" in result.output
    completed = subprocess.run(
        [sys.executable, "-m", "simulator", "--show-completion", "bash"], capture_output=True, text=True, timeout=60, cwd=REPO,
        env={**os.environ, **WIDE},
    )
    assert completed.returncode == 0, completed.stderr
    assert "complete" in completed.stdout and "COMP_WORDS" in completed.stdout


def test_there_are_commands_to_check():
    assert {("run",), ("plan",), ("fit",), ("testbed", "compare")} <= set(COMMANDS)


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_every_command_shows_an_example_that_parses(path):
    examples = _examples(path)
    assert examples, f"latsim {' '.join(path)} --help shows no example"
    for example in examples:
        assert shlex.split(example)[1 : 1 + len(path)] == list(path), f"an example of {path} runs another command: {example}"
        _parse(example)


def test_a_wrong_example_would_be_caught():
    with pytest.raises(Exception, match="No such option"):
        _parse("latsim run scenarios/quickstart.yaml --no-such-option")
    with pytest.raises(Exception, match="Missing parameter: out"):
        _parse("latsim plan scenarios/plan-cpu.yaml")  # --out is required


CHEAP = {"validate", "schema"}  # these run in a second; so does analyze without simulating and profile printing a table


@pytest.mark.parametrize(
    "example",
    [example for path in COMMANDS for example in _examples(path)
     if path[0] in CHEAP or "--no-simulate" in example or "--table" in example],
)
def test_cheap_examples_run(example, monkeypatch):
    monkeypatch.chdir(REPO)
    _, arguments = _parse(example)
    result = _runner.invoke(app, arguments, env=WIDE)
    assert result.exit_code == 0, result.output
    assert result.output.strip()
