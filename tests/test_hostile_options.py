"""Hostile inputs, command-line options: out-of-range numbers, missing or extra arguments, many files, bugs.

Bad options are refused by the option parser (exit 2, the option named); ``--jobs`` is lowered to
what can run at once; ``validate`` reports every file; an internal error is one line (exit 70)
unless ``--debug`` asks for the traceback.
"""

from __future__ import annotations

import json
import sys

import pytest

import simulator.cli
from tests.helpers import base_scenario
from tests.hostile import REPO, assert_clean_error, assert_ok, cli, tiny_run, write_scenario


@pytest.fixture
def scenario(tmp_path):
    return write_scenario(tmp_path, base_scenario())


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        (["--requests", "0"], "--requests"),
        (["--requests", "-1"], "--requests"),
        (["--requests", "abc"], "--requests"),
        (["--requests", "1e12"], "--requests"),
        (["--requests", str(10**10)], "--requests"),
        (["--replications", "0"], "--replications"),
        (["--replications", str(10**6)], "--replications"),
        (["--seed", "-1"], "--seed"),
        (["--seed", "abc"], "--seed"),
        (["--jobs", "0"], "--jobs"),
        (["--jobs", "-3"], "--jobs"),
        (["--jobs", "many"], "--jobs"),
        (["--frobnicate"], "--frobnicate"),
        (["--json"], "--json"),
        (["extra.yaml"], "extra.yaml"),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else None,
)
def test_run_option(scenario, options, needle):
    assert_clean_error(cli("run", scenario, *options), needle)


def test_run_without_a_scenario():
    assert_clean_error(cli("run"), "Missing argument")


def test_validate_without_files():
    assert_clean_error(cli("validate"), "Missing argument")


def test_no_command_prints_help():
    result = cli(max_chars=40_000)  # the command list with its one-line help each
    assert result.exit_code in (0, 2) and "Usage" in result.output and "Traceback" not in result.output


def test_jobs_beyond_replications_and_cpus_are_lowered(scenario):
    result = cli("run", scenario, *tiny_run("--jobs", 1000))
    assert_ok(result)
    assert "--jobs 1000 lowered to" in result.stderr and "2 replication(s)" in result.stderr


def test_a_log_gets_progress_lines(scenario):
    """Not in a terminal, a run is never silent: a line at the start (and every few seconds)."""
    result = cli("run", scenario, "--requests", 200, "--replications", 2)
    assert_ok(result)
    assert "simulating test: 400 measured requests in all" in result.stderr


def test_slo_missed_exits_1(tmp_path):
    data = base_scenario()
    data["workload"]["classes"][0].update(deadline_ms=0.001, target=0.99)
    result = cli("run", write_scenario(tmp_path, data), *tiny_run("--fail-on-slo"))
    assert result.exit_code == 1 and "Traceback" not in result.output


def test_schema_prints_json():
    result = cli("schema", max_chars=1_000_000)
    assert_ok(result)
    assert json.loads(result.stdout)["title"] == "Scenario"


def _files(tmp_path):
    good = write_scenario(tmp_path, base_scenario(), "good.yaml")
    overloaded = base_scenario()
    overloaded["workload"]["arrival"]["rate_per_s"] = 500
    unstable = write_scenario(tmp_path, overloaded, "unstable.yaml")
    broken = base_scenario()
    broken["nodes"][0]["workers"] = 0
    bad = write_scenario(tmp_path, broken, "bad.yaml")
    return good, unstable, bad, tmp_path / "missing.yaml", write_scenario(tmp_path, b"\0\1\2", "binary.yaml")


def test_validate_reports_every_file(tmp_path):
    good, unstable, bad, missing, binary = _files(tmp_path)
    result = cli("validate", bad, good, missing, unstable, binary)
    stderr = assert_clean_error(result, str(bad), "nodes[0].workers", str(missing), str(unstable), str(binary), "4 of 5 files")
    assert f"ok: {good}" in result.stdout and "unstable system" in stderr


def test_validate_exit_3_when_only_unstable(tmp_path):
    good, unstable, *_ = _files(tmp_path)
    assert_clean_error(cli("validate", good, unstable), "offered load", code=3)


def test_validate_exit_0_when_all_good(tmp_path):
    result = cli("validate", *[write_scenario(tmp_path, base_scenario(), f"s{i}.yaml") for i in range(3)])
    assert_ok(result)
    assert result.stdout.count("ok: ") == 3


# --- internal errors: main() reports them in one line, or re-raises with --debug ---------------------------------------


@pytest.fixture
def broken_check(monkeypatch):
    """A bug inside latsim: the stability check raises something no user input explains."""

    def bug(plan):
        raise RuntimeError("an invariant broke")

    monkeypatch.setattr("simulator.runner.checks.check_stability", bug)


def _main(monkeypatch, *args: object) -> int:
    monkeypatch.setattr(sys, "argv", ["latsim", *map(str, args)])
    with pytest.raises(SystemExit) as exit_:
        simulator.cli.main()
    return exit_.value.code


def test_internal_error_is_one_line(monkeypatch, capsys, scenario, broken_check):
    assert _main(monkeypatch, "validate", scenario) == simulator.cli.EXIT_INTERNAL
    stderr = capsys.readouterr().err
    assert "internal error: RuntimeError: an invariant broke" in stderr and "--debug" in stderr
    assert "Traceback" not in stderr and len(stderr.strip().splitlines()) <= 3


def test_debug_shows_the_traceback(monkeypatch, scenario, broken_check):
    monkeypatch.setattr(sys, "argv", ["latsim", "--debug", "validate", str(scenario)])
    with pytest.raises(RuntimeError, match="an invariant broke"):
        simulator.cli.main()


def test_debug_keeps_user_errors_plain(monkeypatch, capsys, tmp_path):
    assert _main(monkeypatch, "--debug", "validate", tmp_path / "missing.yaml") == 2
    assert "does not exist" in capsys.readouterr().err


# --- profile --table options --------------------------------------------------------------------------------------------


SHIPPED = "profiles/cpu-amd-epyc-2c-avx512/zoo"


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        (["--table", "no/such/bundle"], "no such profile bundle directory"),
        (["--table", SHIPPED, "--threads", "1,2"], "one thread count"),
        (["--table", SHIPPED, "--threads", "zero"], "positive integers"),
        (["--table", SHIPPED, "--threads", "64"], "no sweep samples"),
        (["--table", SHIPPED, "--stage", "warp"], "no sweep samples of stage 'warp'"),
        (["--table", "/dev/zero"], "no such profile bundle directory"),
    ],
    ids=["missing", "two-thread-counts", "thread-word", "threads-not-measured", "stage-unknown", "dev-zero"],
)
def test_profile_table_option(monkeypatch, options, needle):
    monkeypatch.chdir(REPO)
    assert_clean_error(cli("profile", *options), needle)


@pytest.mark.parametrize(("address", "needle"), [
    ("not a url", "missing port number"), ("", "missing port number"), ("tcp://", "missing port number"),
    ("ftp://10.0.0.5:8786", "unknown scheme 'ftp'"), ("tcp://10.0.0.5:0", "port must be 1 to 65535"),
    ("tcp://10.0.0.5:99999", "port must be 1 to 65535"),
])
def test_plan_refuses_a_scheduler_address_dask_cannot_read(tmp_path, address, needle):
    """A --scheduler that is no Dask address is refused before anything connects or is written (exit 2)."""
    pytest.importorskip("distributed")
    from tests.test_plan import plan_scenario

    path = write_scenario(tmp_path, plan_scenario({"workers": [1, 2]}))
    assert_clean_error(cli("plan", path, "--out", tmp_path / "out", "--scheduler", address, "--quiet"), "scheduler address", needle)
    assert not (tmp_path / "out").exists()
