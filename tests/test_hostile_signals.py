"""Hostile inputs, signals: Ctrl-C (SIGINT) and SIGTERM at any point of ``latsim run``.

The process must stop promptly with exit 130 / 143 and one line saying so, never a traceback, and
leave no output presented as complete (an --out folder keeps its INCOMPLETE marker), nor a
replication worker running on.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from simulator.runner.outputs import INCOMPLETE
from tests.helpers import base_scenario
from tests.hostile import REPO, WIDE, write_scenario

PROMPT_S = 5.0  # from the signal to the exit


@contextmanager
def _running(tmp_path: Path, *options: str) -> Iterator[tuple[subprocess.Popen, Path]]:
    """``latsim run`` of a scenario long enough to interrupt (millions of requests); stderr goes to a file.

    The run starts in its own process group, and on the way out (a failed assertion too) the whole
    group is killed and reaped: no replication worker is left simulating after the test.
    """
    data = base_scenario()
    data["run"].update(requests=10_000_000, replications=4)
    scenario = write_scenario(tmp_path, data)
    log = tmp_path / "stderr.txt"
    with open(log, "w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "simulator", "run", str(scenario), *options],
            stdout=subprocess.DEVNULL, stderr=stderr, cwd=REPO, env={**os.environ, **WIDE}, start_new_session=True,
        )
    try:
        yield process, log
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass  # the group is gone: every process of the run has exited
        process.wait(timeout=30)


def _wait_for(log: Path, text: str, seconds: float = 30) -> None:
    end = time.monotonic() + seconds
    while text not in log.read_text():
        assert time.monotonic() < end, f"{text!r} never appeared: {log.read_text()}"
        time.sleep(0.05)


def _interrupt(process: subprocess.Popen, log: Path, signum: int) -> str:
    """Send ``signum``; the process must exit promptly, 128 + signum, with one line and no traceback."""
    process.send_signal(signum)
    sent = time.monotonic()
    returncode = process.wait(timeout=30)
    stderr = log.read_text()
    assert time.monotonic() - sent < PROMPT_S, f"took {time.monotonic() - sent:.1f} s to stop"
    assert returncode == 128 + signum, (returncode, stderr)
    assert "Traceback" not in stderr, stderr
    name = signal.Signals(signum).name
    assert [line for line in stderr.splitlines() if "interrupted" in line] == [
        line for line in stderr.splitlines() if line.startswith(f"latsim: interrupted by {name}")
    ]
    assert f"latsim: interrupted by {name}" in stderr, stderr
    return stderr


def _wait_for_library(process: subprocess.Popen, name: str, seconds: float = 30) -> None:
    """Until the process has mapped a shared library whose path contains ``name`` (an import under way)."""
    end = time.monotonic() + seconds
    while name not in Path(f"/proc/{process.pid}/maps").read_text():
        assert time.monotonic() < end and process.poll() is None, f"{name} was never loaded"
        time.sleep(0.005)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_while_importing(tmp_path, signum):
    """Right when numpy starts loading: the run command's imports (numpy, pandas, scipy) take about a second."""
    with _running(tmp_path, "--quiet") as (process, log):
        _wait_for_library(process, "_multiarray_umath")
        _interrupt(process, log, signum)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_while_simulating(tmp_path, signum):
    with _running(tmp_path) as (process, log):
        _wait_for(log, "measured requests in all")
        time.sleep(0.3)
        _interrupt(process, log, signum)


def _processes_naming(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and text.encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def test_parallel_replications_stop_too(tmp_path):
    with _running(tmp_path, "--jobs", "2") as (process, log):
        _wait_for(log, "measured requests in all")
        time.sleep(1.0)  # the workers are simulating
        _interrupt(process, log, signal.SIGTERM)
        time.sleep(0.5)
        assert _processes_naming(str(tmp_path)) == []


def test_an_out_folder_is_left_marked_incomplete(tmp_path):
    out = tmp_path / "out"
    with _running(tmp_path, "--out", str(out)) as (process, log):
        _wait_for(log, "measured requests in all")
        time.sleep(0.5)
        _interrupt(process, log, signal.SIGINT)
    assert sorted(path.name for path in out.iterdir()) == [INCOMPLETE]  # no records, no scratch folder, no summary


def test_a_second_signal_stops_at_once(tmp_path):
    with _running(tmp_path) as (process, log):
        _wait_for(log, "measured requests in all")
        process.send_signal(signal.SIGINT)
        _interrupt(process, log, signal.SIGINT)


def test_a_failing_test_leaves_no_run_behind(tmp_path):
    """A test that fails while the run simulates (here on purpose) still kills the run and its workers."""
    with pytest.raises(AssertionError, match="on purpose"), _running(tmp_path, "--jobs", "2") as (process, log):
        _wait_for(log, "measured requests in all")
        time.sleep(1.0)  # the workers are simulating
        raise AssertionError("failed on purpose")
    assert process.returncode == -signal.SIGKILL
    time.sleep(0.5)  # killed workers leave the process table once their parent is reaped
    assert _processes_naming(str(tmp_path)) == []
