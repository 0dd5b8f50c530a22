"""Hostile inputs, output paths: --json, --out and --plots pointing at the wrong kind of place.

A path that cannot be written is refused before the simulation starts (exit 2, the path named);
streams and special files are written directly and survive (never replaced by a rename); symbolic
links are followed; an --out folder is never presented as a complete run when it is not one.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from simulator.cli import Interrupted
from simulator.files import OutputPathError, write_atomically
from simulator.runner.outputs import INCOMPLETE, RUN_FILES
from tests.helpers import base_scenario
from tests.hostile import REPO, assert_clean_error, assert_ok, cli, latsim, tiny_run, write_scenario


@pytest.fixture
def scenario(tmp_path):
    data = base_scenario()
    data["run"].update(requests=200, replications=2)
    return write_scenario(tmp_path, data)


@pytest.fixture
def no_simulation(monkeypatch):
    """Fail the case if the simulation starts: these paths must be refused before it."""

    def simulate(*args, **kwargs):
        raise AssertionError("the simulation started although an output path is unusable")

    monkeypatch.setattr("simulator.runner.api.run", simulate)


def _file(tmp_path: Path) -> Path:
    path = tmp_path / "a-file"
    path.write_text("keep me")
    return path


def _link_to_folder(tmp_path: Path) -> Path:
    (tmp_path / "link").symlink_to(tmp_path)
    return tmp_path / "link"


# (id, option, make the path, words the error must contain)
REFUSED = [
    ("json-a-folder", "--json", lambda tmp: tmp, ["is a folder; give a file name"]),
    ("json-empty-path", "--json", lambda tmp: "", ["--json", "give a file path"]),
    ("json-missing-folder", "--json", lambda tmp: tmp / "no" / "such" / "s.json", ["does not exist; create it first"]),
    ("json-under-a-file", "--json", lambda tmp: _file(tmp) / "s.json", ["is a file, not a folder"]),
    ("json-in-proc", "--json", lambda tmp: "/proc/self/summary.json", ["cannot create files in /proc"]),
    ("json-proc-file", "--json", lambda tmp: "/proc/self/status", ["cannot create files in /proc"]),
    ("json-link-to-folder", "--json", _link_to_folder, ["is a folder"]),
    ("out-a-file", "--out", _file, ["is a file, not a folder"]),
    ("out-under-a-file", "--out", lambda tmp: _file(tmp) / "run", ["is a file, not a folder"]),
    ("out-in-proc", "--out", lambda tmp: "/proc/run-output", ["cannot create anything in /proc"]),
    ("out-proc-file", "--out", lambda tmp: "/proc/self/status", ["is a file, not a folder"]),
    ("plots-a-file", "--plots", _file, ["is a file, not a folder"]),
    ("plots-under-a-file", "--plots", lambda tmp: _file(tmp) / "deep" / "plots", ["is a file, not a folder"]),
    ("plots-in-proc", "--plots", lambda tmp: "/proc/plots", ["cannot create anything in /proc"]),
]


@pytest.mark.parametrize(("option", "make", "needles"), [case[1:] for case in REFUSED], ids=[case[0] for case in REFUSED])
def test_refused_before_the_simulation(tmp_path, scenario, no_simulation, option, make, needles):
    path = make(tmp_path)
    assert_clean_error(cli("run", scenario, option, path, "--quiet"), *needles)
    if (tmp_path / "a-file").exists():
        assert (tmp_path / "a-file").read_text() == "keep me"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
@pytest.mark.parametrize("option", ["--json", "--out", "--plots"])
def test_read_only_folder_refused_before_the_simulation(tmp_path, scenario, no_simulation, option):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    target = folder / ("s.json" if option == "--json" else "run")
    assert_clean_error(cli("run", scenario, option, target, "--quiet"), "Permission denied")


def test_json_to_stdout_keeps_stdout_pure(scenario):
    result = cli("run", scenario, "--quiet", "--json", "-")
    assert_ok(result)
    assert json.loads(result.stdout)["scenario"] == "test"


def test_dev_null_is_written_not_replaced(scenario):
    assert_ok(cli("run", scenario, "--quiet", "--json", "/dev/null"))
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_a_full_device_gives_a_clean_error_and_survives(tmp_path, scenario):
    full = tmp_path / "full"
    try:
        os.mknod(full, stat.S_IFCHR | 0o666, os.makedev(1, 7))  # a private /dev/full
    except PermissionError:
        pytest.skip("creating a device node needs root")
    assert_clean_error(cli("run", scenario, "--quiet", "--json", full), str(full), "No space left on device")
    assert stat.S_ISCHR(os.stat(full).st_mode)


def test_a_fifo_is_written_to_its_reader(tmp_path, scenario):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    assert_ok(cli("run", scenario, "--quiet", "--json", fifo))
    reader.join(10)
    assert json.loads(received[0])["scenario"] == "test" and stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_a_symlink_is_followed_and_kept(tmp_path, scenario):
    (tmp_path / "real.json").write_text("old")
    (tmp_path / "link.json").symlink_to("real.json")
    assert_ok(cli("run", scenario, "--quiet", "--json", tmp_path / "link.json"))
    assert (tmp_path / "link.json").is_symlink()
    assert json.loads((tmp_path / "real.json").read_text())["scenario"] == "test"


def test_a_dangling_symlink_creates_its_target(tmp_path, scenario):
    (tmp_path / "link.json").symlink_to("made.json")
    assert_ok(cli("run", scenario, "--quiet", "--json", tmp_path / "link.json"))
    assert (tmp_path / "link.json").is_symlink() and json.loads((tmp_path / "made.json").read_text())


def test_a_regular_file_is_replaced_whole(tmp_path, scenario):
    (tmp_path / "s.json").write_text("old")
    assert_ok(cli("run", scenario, "--quiet", "--json", tmp_path / "s.json"))
    assert json.loads((tmp_path / "s.json").read_text())["scenario"] == "test"
    assert not list(tmp_path.glob(".*.partial"))


def test_plots_into_a_new_nested_folder(tmp_path, scenario):
    assert_ok(cli("run", scenario, "--quiet", "--plots", tmp_path / "a" / "b"))
    assert len(list((tmp_path / "a" / "b").glob("*.png"))) >= 4


# --- the --out folder: never a complete-looking mix of two runs --------------------------------------------------------


def _previous_run(out: Path) -> None:
    out.mkdir()
    for name in RUN_FILES:
        (out / name).write_text("previous run")
    (out / "notes.txt").write_text("the user's")


def test_out_replaces_a_previous_run_and_keeps_other_files(tmp_path, scenario):
    _previous_run(tmp_path / "out")
    assert_ok(cli("run", scenario, "--quiet", "--out", tmp_path / "out"))
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["scenario"] == "test"
    assert not (tmp_path / "out" / INCOMPLETE).exists() and (tmp_path / "out" / "notes.txt").read_text() == "the user's"


def test_an_interrupted_out_run_is_marked_incomplete(tmp_path, scenario, monkeypatch):
    _previous_run(tmp_path / "out")

    def interrupted(result, path):
        raise Interrupted(signal.SIGINT)

    monkeypatch.setattr("simulator.runner.result.RunResult.write_json", interrupted)  # the first file written
    with pytest.raises(Interrupted):
        cli("run", scenario, "--quiet", "--out", tmp_path / "out")
    left = {path.name for path in (tmp_path / "out").iterdir()}
    assert INCOMPLETE in left and "notes.txt" in left
    assert "summary.json" not in left and "stats.csv" not in left and not any(name.endswith(".partial") for name in left)


def test_an_unstable_out_run_is_marked_incomplete(tmp_path):
    data = base_scenario()
    data["workload"]["arrival"]["rate_per_s"] = 500
    _previous_run(tmp_path / "out")
    assert_clean_error(cli("run", write_scenario(tmp_path, data), "--quiet", "--out", tmp_path / "out"), code=3)
    assert (tmp_path / "out" / INCOMPLETE).exists() and not (tmp_path / "out" / "summary.json").exists()


# --- write_atomically itself ------------------------------------------------------------------------------------------


def test_an_interrupted_write_leaves_the_old_file_and_no_temporary(tmp_path):
    (tmp_path / "s.json").write_text("old")

    def write(path: Path) -> None:
        path.write_text("half")
        raise Interrupted(signal.SIGTERM)

    with pytest.raises(Interrupted):
        write_atomically(tmp_path / "s.json", write)
    assert [path.name for path in tmp_path.iterdir()] == ["s.json"] and (tmp_path / "s.json").read_text() == "old"


def test_a_failed_write_is_an_output_path_error(tmp_path):
    with pytest.raises(OutputPathError, match="missing/s.json: cannot write: No such file or directory"):
        write_atomically(tmp_path / "missing" / "s.json", lambda path: path.write_text("x"))


def test_a_new_file_gets_the_umask_permissions(tmp_path):
    umask = os.umask(0o022)
    try:
        write_atomically(tmp_path / "s.json", lambda path: path.write_text("x"))
    finally:
        os.umask(umask)
    assert stat.S_IMODE(os.stat(tmp_path / "s.json").st_mode) == 0o644


# --- real streams need a real process ---------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", ["/dev/stdout", "/dev/stderr"])
def test_a_standard_stream_by_name(scenario, stream):
    completed = latsim("run", scenario, *tiny_run("--json", stream))
    assert_ok(completed)
    written, other = (completed.stdout, completed.stderr) if stream == "/dev/stdout" else (completed.stderr, completed.stdout)
    assert json.loads(written[written.index("{"):])["scenario"] == "test" and "latency" in other


def test_dev_stdout_redirected_to_a_file_is_not_truncated(tmp_path, scenario):
    with open(tmp_path / "captured.txt", "w") as captured:
        completed = subprocess.run(
            [sys.executable, "-m", "simulator", "run", str(scenario), *tiny_run("--json", "/dev/stdout")],
            stdout=captured, stderr=subprocess.PIPE, text=True, timeout=60, cwd=REPO,
        )
    assert completed.returncode == 0, completed.stderr
    assert json.loads((tmp_path / "captured.txt").read_text())["scenario"] == "test"
