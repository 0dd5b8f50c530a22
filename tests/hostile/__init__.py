"""Helpers of the hostile-input suite (``tests/test_hostile_*.py``, one module per category).

Every case asserts the same contract: latsim answers bad input with a clean error (exit 2, the file
and field named) or a sound result; never a traceback, a hang or a flood of output. Most cases
run the CLI in-process (``cli``, fast) under a wall-clock ``deadline``; cases that could exhaust
memory or need a real process (signals, ``/dev/stdout``) run ``latsim`` as a subprocess with a
memory limit and a timeout (``latsim``).
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from typer.testing import CliRunner, Result

from simulator.cli import app

REPO = Path(__file__).resolve().parents[2]
WIDE = {"COLUMNS": "1000"}  # no wrapping of messages, so a needle is found in one piece
MAX_OUTPUT_CHARS = 20_000  # what any hostile case may print, at most
SUBPROCESS_MEMORY_BYTES = 4 << 30  # a subprocess case that wants more is stopped (MemoryError), not the machine
_runner = CliRunner()


class Hung(BaseException):
    """A case ran past its deadline (a BaseException, so that no ``except Exception`` in latsim swallows it)."""


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Raise :class:`Hung` in the main thread if the block runs longer than ``seconds`` (SIGALRM)."""

    def expire(_signum: int, _frame: object) -> None:
        raise Hung(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def write_scenario(directory: Path, content: dict[str, Any] | str | bytes, name: str = "scenario.yaml") -> Path:
    """A scenario file: a dict is dumped as YAML, text written as UTF-8, bytes as they are."""
    path = directory / name
    if isinstance(content, dict):
        content = yaml.safe_dump(content, sort_keys=False)
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


def cli(*args: object, seconds: float = 30, max_chars: int = MAX_OUTPUT_CHARS) -> Result:
    """``latsim ARGS`` in-process; fails on any exception but a clean exit, on a hang, or on more than ``max_chars`` of output."""
    with deadline(seconds):
        result = _runner.invoke(app, [str(arg) for arg in args], env=WIDE)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        import traceback

        trace = "".join(traceback.format_exception(result.exception))
        raise AssertionError(f"latsim {' '.join(map(str, args))} raised instead of reporting:\n{trace}")
    assert len(result.output) < max_chars, f"{len(result.output)} characters of output"
    return result


def validate(path: Path, seconds: float = 30) -> Result:
    return cli("validate", path, seconds=seconds)


def assert_clean_error(result: Result | subprocess.CompletedProcess, *needles: str, code: int = 2) -> str:
    """Exit ``code``, no traceback, every needle in stderr; returns stderr."""
    returncode = result.exit_code if isinstance(result, Result) else result.returncode
    stderr = result.stderr
    assert "Traceback" not in stderr and "Traceback" not in result.stdout, stderr
    assert returncode == code, f"exit {returncode}, expected {code}; stderr: {stderr[-2000:]}"
    for needle in needles:
        assert needle in stderr, f"{needle!r} not in: {stderr[-2000:]}"
    return stderr


def assert_ok(result: Result | subprocess.CompletedProcess) -> None:
    returncode = result.exit_code if isinstance(result, Result) else result.returncode
    assert returncode == 0 and "Traceback" not in result.stderr, result.stderr[-2000:]


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (SUBPROCESS_MEMORY_BYTES, SUBPROCESS_MEMORY_BYTES))


def latsim(*args: object, timeout: float = 60, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """``python -m simulator ARGS`` as a subprocess with a memory limit; fails on a timeout (a hang)."""
    command = [sys.executable, "-m", "simulator", *map(str, args)]
    env = {**os.environ, **WIDE, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, cwd=cwd or REPO, env=env, preexec_fn=_limit_memory
    )


def tiny_run(*extra: object) -> list[str]:
    """Options for a run that takes a second: 200 requests, 2 replications, no progress bar."""
    return ["--requests", "200", "--replications", "2", "--quiet", *map(str, extra)]
