"""latsim calibrate: request logs of a server whose truth is known → a calibration → a calibrated node.

The "server" is a one-worker FIFO queue computed exactly (Lindley's recursion) whose calls take the
scenario's service model × a known speed factor plus a known overhead, and whose replies take a
known time outside it. Both methods must recover what was put in, and a scenario whose node takes
the calibration must predict the server's latency.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from simulator.errors import CalibrationError, ScenarioError
from simulator.fitting.from_logs import calibrate_from_logs, write_calibration_from_logs
from simulator.formats.request_log import read_request_log, request_log_schema
from simulator.runner.api import run
from simulator.scenario.calibration import read_calibration
from simulator.scenario.loader import load_scenario
from tests.helpers import run_cli

SERVICE_MEAN_MS = 2.0
SPEED = 1.3  # the real server is 30 % slower than the profile under load
OVERHEAD_MS = 0.2
OUTSIDE_MS = 0.5
SCENARIO = {
    "name": "calibrated-node",
    "run": {"requests": 20000, "replications": 4, "seed": 3},
    "workload": {"arrival": {"process": "poisson", "rate_per_s": 250}, "classes": [{"name": "a"}]},
    "nodes": [{"name": "server", "workers": 1,
               "service": {"distribution": "scipy", "name": "lognorm", "params": {"s": 0.3, "scale": float(SERVICE_MEAN_MS / np.exp(0.045))}}}],
}


def _server_log(rate_per_s: float, requests: int, seed: int, server_side: bool = True, workers: int = 1) -> pd.DataFrame:
    """One run of the known FIFO server with ``workers`` workers at ``rate_per_s`` Poisson arrivals, as a request log."""
    rng = np.random.default_rng(seed)
    arrivals = np.cumsum(rng.exponential(1000.0 / rate_per_s, requests))
    kernel = SERVICE_MEAN_MS / np.exp(0.045) * rng.lognormal(0.0, 0.3, requests) * SPEED
    start = np.empty(requests)
    worker_of = np.empty(requests, dtype=int)
    free = [(0.0, worker) for worker in range(workers)]  # (free from, worker): the earliest free worker takes the next
    for i in range(requests):
        free.sort()
        free_ms, worker_of[i] = free.pop(0)
        start[i] = max(arrivals[i], free_ms)
        free.append((start[i] + kernel[i] + OVERHEAD_MS, worker_of[i]))
    kernel_end = start + kernel
    worker_free = kernel_end + OVERHEAD_MS
    client_send = arrivals - OUTSIDE_MS / 2 + 1000.0  # the client's clock has another origin
    frame = pd.DataFrame({
        "request_id": np.arange(requests), "class": "a", "status": 200,
        "client_send_ms": client_send, "client_receive_ms": worker_free + OUTSIDE_MS / 2 + 1000.0,
        "target_rate_per_s": rate_per_s,
    })
    if server_side:
        frame["server_arrival_ms"] = arrivals
        frame["dequeue_ms"] = start
        frame["service_start_ms"] = start
        frame["service_end_ms"] = kernel_end
        frame["worker_free_ms"] = worker_free
        frame["worker_id"] = worker_of
    return frame


@pytest.fixture
def scenario_file(tmp_path: Path) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(SCENARIO))
    return path


def _logs(tmp_path: Path, rates: list[float], server_side: bool = True, requests: int = 8000, suffix: str = ".parquet",
          workers: int = 1) -> list[Path]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, rate in enumerate(rates):
        path = tmp_path / f"run-{index}{suffix}"
        frame = _server_log(rate, requests, seed=index, server_side=server_side, workers=workers)
        if suffix == ".csv":
            frame.to_csv(path, index=False)
        elif suffix == ".jsonl":
            path.write_text("\n".join(json.dumps(record) for record in frame.to_dict("records")))
        else:
            frame.to_parquet(path, index=False)
        paths.append(path)
    return paths


def test_server_side_logs_recover_speed_overhead_and_outside(tmp_path: Path, scenario_file: Path) -> None:
    calibration, fitted_on = calibrate_from_logs(_logs(tmp_path, [150.0, 300.0]), load_scenario(scenario_file))
    assert fitted_on["method"] == "server_side"
    for level in calibration["levels"]:
        factors, transition = np.array(level["speed"]["factors"]), np.array(level["speed"]["transition"])
        stationary = np.linalg.matrix_power(transition, 200)[0]
        assert stationary @ factors == pytest.approx(SPEED, rel=0.03)  # the speed put in, seen through the profile's mean
        assert np.median(level["outside_ms"]) == pytest.approx(OUTSIDE_MS, rel=1e-6)
    assert np.mean(calibration["overhead"]["mean_ms"]) == pytest.approx(OVERHEAD_MS, rel=0.02)
    utilisations = sorted(level["level"] for level in calibration["levels"])
    assert utilisations[-1] == pytest.approx(300 * (SPEED * SERVICE_MEAN_MS + OVERHEAD_MS) / 1000, rel=0.05)


def test_a_calibration_with_a_non_finite_value_writes_no_file(tmp_path: Path, scenario_file: Path) -> None:
    """A fitted value that is not finite (or outside times that are not) stops the write before any file is made."""
    from simulator.fitting.calibration import write_calibration_file

    calibration, fitted_on = calibrate_from_logs(_logs(tmp_path / "logs", [150.0, 300.0], requests=3000), load_scenario(scenario_file))
    out = tmp_path / "cal" / "calibration.yaml"
    broken = {**calibration, "overhead": {**calibration["overhead"], "mean_ms": [float("nan")]}}
    with pytest.raises(CalibrationError, match=r"not written: the fit gave overhead.mean_ms\[0\] no finite value"):
        write_calibration_file(broken, out, fitted_on)
    level = {**calibration["levels"][0], "outside_ms": np.array([0.5, np.inf])}
    with pytest.raises(CalibrationError, match=r"outside-0.\d\d.csv \(outside times\)"):
        write_calibration_file({**calibration, "levels": [level]}, out, fitted_on)
    assert not (tmp_path / "cal").exists()


def test_client_side_logs_recover_speed_and_outside_by_simulation(tmp_path: Path, scenario_file: Path) -> None:
    logs = _logs(tmp_path, [100.0, 330.0], server_side=False, requests=4000, suffix=".csv")
    calibration, fitted_on = calibrate_from_logs(logs, load_scenario(scenario_file))
    assert fitted_on["method"] == "client_side"
    # without server times the constant overhead is seen as time outside (at low load) or as a slower call (under load)
    effective = SPEED + OVERHEAD_MS / SERVICE_MEAN_MS
    for level in calibration["levels"]:
        assert SPEED * 0.95 <= level["speed"]["factors"][0] <= effective * 1.05
    assert OUTSIDE_MS - 0.1 <= np.median(calibration["levels"][0]["outside_ms"]) <= OUTSIDE_MS + OVERHEAD_MS + 0.1


def test_a_calibrated_node_predicts_the_server(tmp_path: Path, scenario_file: Path) -> None:
    """Calibrated on runs at 150/s and 300/s, the node predicts a fresh run at 300/s; from the raw profile it is low."""
    out = tmp_path / "cal" / "server.yaml"
    write_calibration_from_logs(_logs(tmp_path, [150.0, 300.0]), load_scenario(scenario_file), out)
    measured = read_request_log(_logs(tmp_path / "fresh", [300.0], requests=40000)[0])
    latency = measured.latency_ms[4000:]
    data = SCENARIO | {"workload": {"arrival": {"process": "poisson", "rate_per_s": 300}, "classes": [{"name": "a"}]}}
    raw_file = tmp_path / "raw.yaml"
    raw_file.write_text(yaml.safe_dump(data))
    calibrated_file = tmp_path / "calibrated.yaml"
    calibrated_file.write_text(yaml.safe_dump(data | {"nodes": [data["nodes"][0] | {"calibration": {"file": "cal/server.yaml"}}]}))
    raw = run(load_scenario(raw_file)).summary["classes"]["all"]["latency_ms"]
    result = run(load_scenario(calibrated_file))
    calibrated = result.summary["classes"]["all"]["latency_ms"]
    for key, quantile in (("p50", 0.5), ("p99", 0.99)):
        truth = float(np.quantile(latency, quantile))
        assert raw[key]["estimate"] < 0.8 * truth  # the raw profile is optimistic
        assert calibrated[key]["estimate"] == pytest.approx(truth, rel=0.1)
    assert any("calibrated from cal/server.yaml" in note for note in result.summary["notes"])


def test_calibration_and_explicit_speed_conflict(tmp_path: Path, scenario_file: Path) -> None:
    out = tmp_path / "cal.yaml"
    write_calibration_from_logs(_logs(tmp_path, [150.0, 300.0], requests=3000), load_scenario(scenario_file), out)
    node = SCENARIO["nodes"][0] | {"calibration": {"file": "cal.yaml"}, "speed": {"factors": [1.0], "transition": [[1.0]]}}
    path = tmp_path / "both.yaml"
    path.write_text(yaml.safe_dump(SCENARIO | {"nodes": [node]}))
    with pytest.raises(ScenarioError, match=r"nodes\[0\]\.speed is set, and nodes\[0\]\.calibration sets it too"):
        run(load_scenario(path))


def test_logs_that_cannot_identify_the_server_are_refused(tmp_path: Path, scenario_file: Path) -> None:
    scenario = load_scenario(scenario_file)
    with pytest.raises(CalibrationError, match="above 50%"):
        calibrate_from_logs(_logs(tmp_path / "low", [50.0, 80.0], requests=3000), scenario)
    with pytest.raises(CalibrationError, match="at least two load levels"):
        calibrate_from_logs(_logs(tmp_path, [300.0], server_side=False, requests=3000), scenario)
    with pytest.raises(CalibrationError, match="at least 100"):
        calibrate_from_logs(_logs(tmp_path, [300.0], requests=50), scenario)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.drop(columns=["status"]), "missing required column"),
        (lambda f: f.assign(client_send_ms=f["client_send_ms"].astype(object).where(f.index != 3, "soon")), "row 4"),
        (lambda f: f.assign(client_receive_ms=f["client_send_ms"] - 1), "before client_send_ms"),
        (lambda f: f.assign(request_id=0), "repeats id"),
        (lambda f: f.assign(dequeue_ms=np.inf), "finite"),
        (lambda f: f.assign(service_end_ms=-5.0), r"\[0, 1e\+14\]"),
        (lambda f: f.assign(batch_size=2.5), "integers"),
        (lambda f: f.assign(format_version=2), "format version 2"),
        (lambda f: f.assign(**{"class": "nobody"}), "not one of the scenario's classes"),
    ],
)
def test_bad_logs_get_a_clear_error(tmp_path: Path, scenario_file: Path, change, message: str) -> None:
    path = tmp_path / "bad.csv"
    change(_server_log(300.0, 500, seed=1)).to_csv(path, index=False)
    with pytest.raises(CalibrationError, match=message):
        calibrate_from_logs([path], load_scenario(scenario_file))


def test_json_lines_logs_read_like_parquet(tmp_path: Path) -> None:
    jsonl = read_request_log(_logs(tmp_path / "j", [200.0], requests=500, suffix=".jsonl")[0])
    parquet = read_request_log(_logs(tmp_path / "p", [200.0], requests=500)[0])
    assert jsonl.server_side and parquet.server_side
    np.testing.assert_allclose(jsonl.latency_ms, parquet.latency_ms)


def test_calibrate_command_and_request_log_schema(tmp_path: Path, scenario_file: Path) -> None:
    logs = _logs(tmp_path, [150.0, 300.0], requests=3000)
    out = tmp_path / "cal.yaml"
    result = run_cli("calibrate", *map(str, logs), "--scenario", str(scenario_file), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "server-side calibration from 2 run(s)" in result.stdout
    assert read_calibration(out)["fitted_on"]["logs"] == ["run-0.parquet", "run-1.parquet"]
    again = run_cli("calibrate", str(logs[0]), "--scenario", str(scenario_file), "--out", str(logs[0]))
    assert again.returncode == 2 and "one of the inputs" in again.stderr
    schema = run_cli("schema", "--request-log")
    assert json.loads(schema.stdout) == request_log_schema()
    assert request_log_schema()["required"] == ["request_id", "class", "client_send_ms", "client_receive_ms", "status"]


def test_calibration_outside_files_must_lie_beside_it(tmp_path: Path, scenario_file: Path) -> None:
    out = tmp_path / "cal.yaml"
    write_calibration_from_logs(_logs(tmp_path, [150.0, 300.0], requests=3000), load_scenario(scenario_file), out)
    document = yaml.safe_load(out.read_text())
    document["levels"][0]["outside"]["file"] = "../../etc/passwd"
    out.write_text(yaml.safe_dump(document))
    with pytest.raises(CalibrationError, match="outside the calibration's folder"):
        read_calibration(out)


def test_an_overloading_finite_trace_is_simulated_not_refused(tmp_path: Path) -> None:
    """A trace replayed at offered load above 1 (as a real server was sent it) runs to its end, with a note."""
    arrivals = np.cumsum(np.random.default_rng(0).exponential(1000.0 / 510.0, 5000))  # 510/s into a 500/s server
    pd.DataFrame({"arrival_ms": arrivals}).to_csv(tmp_path / "trace.csv", index=False)
    data = {
        "name": "overloaded-trace", "run": {"requests": 4500, "warmup_requests": 500, "replications": 1},
        "workload": {"arrival": {"process": "trace", "file": "trace.csv"}, "classes": [{"name": "a"}]},
        "nodes": [{"name": "n", "service": {"distribution": "deterministic", "value_ms": 2.0}}],
    }
    path = tmp_path / "trace.yaml"
    path.write_text(yaml.safe_dump(data))
    result = run(load_scenario(path))
    assert result.status == "ok"
    assert result.summary["offered_load"] >= 1
    assert any("the trace overloads the system" in note for note in result.summary["notes"])


EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "own-server"


def test_the_example_servers_shipped_logs_calibrate_with_no_conversion(tmp_path: Path) -> None:
    """docs/calibration.md's server writes its logs in the format itself: they calibrate as they are."""
    calibration, fitted_on = calibrate_from_logs(sorted(EXAMPLE.glob("logs/A-*.jsonl")), load_scenario(EXAMPLE / "scenario.yaml"))
    assert fitted_on["method"] == "server_side" and fitted_on["rate_per_s"] == [200.0, 850.0]
    assert len(calibration["levels"]) == 5
    shipped = read_calibration(EXAMPLE / "calibration" / "own-server.yaml")
    assert [level["rate_per_s"] for level in shipped["levels"]] == [level["rate_per_s"] for level in calibration["levels"]]


def test_the_example_server_and_load_generator_write_a_request_log(tmp_path: Path) -> None:
    """The example server and its load generator, for a second on loopback, give a log latsim reads (server-side)."""
    import socket
    import subprocess
    import sys

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, str(EXAMPLE / "server.py"), "--port", str(port)], stdout=subprocess.PIPE, text=True)
    try:
        assert "serving on" in server.stdout.readline()
        out = tmp_path / "run.jsonl"
        subprocess.run([sys.executable, str(EXAMPLE / "load.py"), "--url", f"http://127.0.0.1:{port}", "--rate", "200",
                        "--duration-s", "1", "--out", str(out)], check=True, timeout=60, capture_output=True)
    finally:
        server.kill()
        server.wait(timeout=10)
    log = read_request_log(out)
    assert log.server_side and len(log.served) == 200 and log.offered_rate_per_s == 200.0


def test_a_calibrated_run_gives_a_prediction_band_around_its_estimate(tmp_path: Path, scenario_file: Path) -> None:
    """Each calibration run alone and each end of the profile's drift moves the estimate; the band holds them."""
    write_calibration_from_logs(_logs(tmp_path, [150.0, 150.0, 300.0], requests=3000), load_scenario(scenario_file), tmp_path / "cal.yaml")
    data = SCENARIO | {"run": {"requests": 5000, "replications": 2, "seed": 3},
                       "nodes": [SCENARIO["nodes"][0] | {"calibration": {"file": "cal.yaml"}}]}
    path = tmp_path / "calibrated.yaml"
    path.write_text(yaml.safe_dump(data))
    result = run(load_scenario(path), band=True)
    band = result.summary["prediction_band"]
    assert band["sources"]["drift"] == 2
    for statistic in ("mean", "p50", "p99"):
        low, high = band["classes"]["all"][statistic]
        estimate = result.summary["classes"]["all"]["latency_ms"][statistic]["estimate"]
        assert low <= estimate <= high and low < high
    assert run(load_scenario(scenario_file), band=True).summary["prediction_band"] is None  # nothing calibrated


def test_a_calibration_from_one_worker_predicts_two_workers_near_saturation(tmp_path: Path, scenario_file: Path) -> None:
    """Machine properties are kept apart from the configuration: calibrated on the one-worker server, a two-worker node
    predicts the two-worker server at 90 % load — its capacity (offered load) within 3 %, its p50 and p99 within 10 %
    (at this load the measured p99 of 54,000 correlated latencies and the simulated one each carry a few % of
    sampling error: 10 % is about two combined standard errors)."""
    write_calibration_from_logs(_logs(tmp_path / "one", [150.0, 320.0]), load_scenario(scenario_file), tmp_path / "cal.yaml")
    rate = 0.9 * 2 * 1000.0 / (SPEED * SERVICE_MEAN_MS + OVERHEAD_MS)
    measured = read_request_log(_logs(tmp_path / "two", [rate], requests=60000, workers=2)[0])
    latency = measured.latency_ms[6000:]
    node = SCENARIO["nodes"][0] | {"workers": 2, "calibration": {"file": "cal.yaml"}}
    data = SCENARIO | {"workload": {"arrival": {"process": "poisson", "rate_per_s": rate}, "classes": [{"name": "a"}]},
                       "nodes": [node], "run": {"requests": 50000, "replications": 4, "seed": 3}}
    path = tmp_path / "two-workers.yaml"
    path.write_text(yaml.safe_dump(data))
    summary = run(load_scenario(path)).summary
    assert summary["offered_load"] == pytest.approx(0.9, rel=0.03)
    for key, quantile in (("p50", 0.5), ("p99", 0.99)):
        assert summary["classes"]["all"]["latency_ms"][key]["estimate"] == pytest.approx(float(np.quantile(latency, quantile)), rel=0.1)
