"""LitServe as a testbed server: what it refuses, its hooks' records (a fake ASGI app, a fake kernel), how the
processes' records join, and a real run of a tiny model behind LitServe with two worker processes and
dynamic batching under open-loop load (a few hundred requests)."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
from pathlib import Path

import pandas as pd
import pytest
import yaml

pytest.importorskip("aiohttp")
pytest.importorskip("torch")
pytest.importorskip("litserve")

from simulator.formats.request_log import read_request_log  # noqa: E402
from simulator.scenario.loader import load_scenario  # noqa: E402
from simulator.testbed.config import TestbedConfig  # noqa: E402
from simulator.testbed.errors import TestbedError  # noqa: E402
from simulator.testbed.litserve_api import (  # noqa: E402
    FRONT_COLUMNS,
    WORKER_COLUMNS,
    FrontRecorder,
    RequestHooks,
    ZooLitAPI,
)
from simulator.testbed.litserve_server import server_records  # noqa: E402
from simulator.testbed.run import REQUEST_LOG_FILE, ServerProcess, run_level  # noqa: E402
from simulator.testbed import scenario as testbed_scenario  # noqa: E402
from simulator.testbed.workers import NO_DEADLINE_NS, RECORD_COLUMNS  # noqa: E402

BUNDLE = Path(__file__).resolve().parent.parent / "profiles" / "cpu-amd-epyc-2c-avx512" / "zoo"


def scenario_file(tmp_path: Path, discipline: str = "fifo", batching: dict | None = None) -> Path:
    node = {
        "name": "server", "workers": 2, "discipline": {"policy": discipline},
        "service": {"distribution": "profile", "bundle": str(BUNDLE), "family": "mlp", "variant": "fp32", "threads": 1},
    }
    if batching is not None:
        node["batching"] = batching
    data = {
        "name": "litserve",
        "workload": {"arrival": {"process": "poisson", "rate_per_s": 100},
                     "classes": [{"name": "a", "priority": 0, "deadline_ms": 20}, {"name": "b", "priority": 1}]},
        "nodes": [node],
    }
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


# -- the mapping and what LitServe cannot do ---------------------------------------------------


def test_a_scenario_maps_to_litserve_workers_and_batching(tmp_path):
    path = scenario_file(tmp_path, batching={"max_batch_size": 8, "max_queue_delay_ms": 2.5})
    config = testbed_scenario.testbed_config(load_scenario(path), server="litserve")
    api = ZooLitAPI(config, str(tmp_path))
    assert config.server == "litserve" and config.workers == 2
    assert api.max_batch_size == 8 and api.batch_timeout == pytest.approx(0.0025) and api.api_path == "/infer"


@pytest.mark.parametrize(("discipline", "batching", "field"), [
    ("priority", None, "nodes[0].discipline.policy"),
    ("edf", None, "nodes[0].discipline.policy"),
    ("fifo", {"max_batch_size": 8, "preferred_batch_sizes": [4]}, "nodes[0].batching.preferred_batch_sizes"),
])
def test_what_litserve_cannot_do_is_refused_naming_the_field(tmp_path, discipline, batching, field):
    scenario = load_scenario(scenario_file(tmp_path, discipline, batching))
    with pytest.raises(TestbedError, match="litserve server cannot serve this: " + re.escape(field)):
        testbed_scenario.testbed_config(scenario, server="litserve")
    assert testbed_scenario.testbed_config(scenario).server == "aiohttp"  # latsim's own server serves it


def test_a_server_process_refuses_before_starting_anything(tmp_path):
    config = TestbedConfig.parse({"server": "litserve", "discipline": "edf"})
    with pytest.raises(TestbedError, match="discipline.policy is 'edf'"):
        ServerProcess(config, tmp_path).__enter__()
    assert not (tmp_path / "server.log").exists()


# -- the hooks -----------------------------------------------------------------------------------


def test_the_front_times_each_request_and_writes_its_records_when_it_stops(tmp_path):
    hooks = RequestHooks()
    events = []

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            await send({"type": "lifespan.shutdown.complete"})
            return
        message = await receive()
        events.append(json.loads(message["body"]))
        hooks.on_request(active_requests=None, litserver=None)  # as LitServe calls it, before its queue put
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    async def receive():
        return {"type": "http.request", "body": b'{"id": 7}', "more_body": False}

    async def send(message):
        pass

    front = FrontRecorder(app, str(tmp_path))

    async def serve():
        for request_id, path in ((7, "/infer"), (8, "/health")):
            scope = {"type": "http", "path": path, "query_string": f"id={request_id}&class=a&phase=load".encode()}
            await front(scope, receive, send)
        await front({"type": "lifespan"}, receive, send)

    asyncio.run(serve())
    [written] = list(tmp_path.glob("front-*.json"))
    data = json.loads(written.read_text())
    assert data["columns"] == list(FRONT_COLUMNS)
    [row] = data["rows"]  # only requests to /infer are recorded
    record = dict(zip(FRONT_COLUMNS, row))
    assert record["request_id"] == 7 and record["class"] == "a" and record["phase"] == "load" and record["status"] == 200
    assert 0 < record["arrival_ns"] <= record["enqueue_ns"] <= record["reply_sent_ns"]
    assert record["in_system_at_arrival"] == 1 and front.in_system == 0 and len(events) == 2


def test_a_worker_records_each_call_once_with_its_batch(tmp_path):
    config = TestbedConfig.parse({"server": "litserve", "batching": {"max_batch_size": 4, "max_queue_delay_ms": 1}})
    api, hooks = ZooLitAPI(config, str(tmp_path)), RequestHooks()
    sizes = []
    api._kernel = sizes.append
    for ids in ([1, 2, 3], [4]):
        hooks.on_before_decode_request(lit_api=api)
        decoded = [api.decode_request({"id": i, "class": "default"}) for i in ids]
        assert api.predict(decoded) == ids
        assert [api.encode_response(y) for y in ids] == [{"id": i} for i in ids]
        hooks.on_after_encode_response(lit_api=api)
    rows = pd.DataFrame(api._rows, columns=list(WORKER_COLUMNS))
    assert sizes == [3, 1] and rows["request_id"].tolist() == [1, 2, 3, 4]
    assert rows["call"].tolist() == [0, 0, 0, 1] and rows["batch_size"].tolist() == [3, 3, 3, 1]
    for earlier, later in itertools.pairwise(["dequeue_ns", "kernel_start_ns", "kernel_end_ns", "worker_done_ns"]):
        assert (rows[later] >= rows[earlier]).all()

    def failing(size):
        raise RuntimeError("out of memory")

    api._kernel = failing
    hooks.on_before_decode_request(lit_api=api)
    with pytest.raises(RuntimeError):
        api.predict([api.decode_request({"id": 5})])
    assert api._rows[-1][0] == 5 and api._rows[-1][-1] == "RuntimeError: out of memory"
    with pytest.raises(Exception, match="400"):
        api.decode_request({"name": "no id"})


def test_the_processes_records_join_into_the_servers_record_columns():
    config = TestbedConfig.parse({"server": "litserve", "classes": [{"name": "a", "deadline_ms": 2}, {"name": "b"}]})
    front = pd.DataFrame(
        [[1, "load", "a", 100, 110, 900, 1, 200], [2, "load", "b", 120, 130, 950, 2, 200], [3, "load", "a", 140, 150, 990, 3, 500]],
        columns=list(FRONT_COLUMNS),
    )
    calls = pd.DataFrame(  # worker 1's call 0 was taken before worker 0's call 0
        [[1, 0, 0, 1, 300, 310, 400, 410, ""], [2, 1, 0, 1, 200, 210, 500, 510, ""]], columns=list(WORKER_COLUMNS)
    )
    records = server_records(front, calls, config).set_index("request_id")
    assert list(records.reset_index().columns) == list(RECORD_COLUMNS)
    assert records.loc[1, "batch_id"] == 1 and records.loc[2, "batch_id"] == 0  # numbered in the order calls were taken
    assert records.loc[1, "deadline_ns"] == 100 + 2_000_000 and records.loc[2, "deadline_ns"] == NO_DEADLINE_NS
    assert records.loc[3, "worker"] == -1 and records.loc[3, "kernel_error"] == "no worker recorded this request"
    assert (records["in_system_at_dequeue"] == -1).all() and records.loc[[1, 2], "kernel_error"].eq("").all()


# -- a real LitServe server under real load (the smoke test of this server kind) ------------------

REQUESTS, PROFILE_REQUESTS = 300, 50


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    config = TestbedConfig.parse({
        "server": "litserve", "model": {"family": "mlp", "size": "tiny"}, "workers": 2, "warmup_calls": 5,
        "batching": {"max_batch_size": 4, "max_queue_delay_ms": 2.0},
        "classes": [{"name": "urgent", "share": 1, "deadline_ms": 50}, {"name": "bulk", "share": 2}],
    })
    out = tmp_path_factory.mktemp("litserve")
    return run_level(config, 100.0, out, requests=REQUESTS, seed=1, profile_requests=PROFILE_REQUESTS,
                     max_p99_lateness_ms=1000.0, max_lateness_ms=10_000.0)  # a busy CI machine: still valid


def test_litserve_answers_every_request_and_each_is_joined_with_its_records(run):
    table = run.requests()
    assert run.valid, run.summary["invalid_reasons"]
    assert len(table) == REQUESTS and set(table["request_id"]) == set(range(PROFILE_REQUESTS, PROFILE_REQUESTS + REQUESTS))
    assert (table["status"] == 200).all() and table["kernel_ms"].notna().all() and table["server_ms"].notna().all()
    assert set(table["worker"]) <= {0, 1} and table["batch_size"].between(1, 4).all()
    calls = table.drop_duplicates("batch_id")
    assert calls["batch_size"].sum() == REQUESTS  # each call holds the requests that name it
    assert table.loc[table["class"] == "urgent", "deadline_ms"].eq(50).all()
    assert pd.read_parquet(run.out_dir / "profile.parquet")["kernel_ms"].notna().all()  # the profile's kernels too
    assert run.summary["harness"] is None  # no in-process profile: LitServe builds the model in its workers


def test_litserve_timestamps_follow_each_request_across_its_processes(run):
    table = run.requests()
    order = ["scheduled_ms", "send_ms", "arrival_ms", "enqueue_ms", "dequeue_ms", "kernel_start_ms", "kernel_end_ms",
             "worker_done_ms", "reply_sent_ms", "reply_received_ms"]
    for earlier, later in itertools.pairwise(order):
        assert (table[later] >= table[earlier]).all(), f"{earlier} after {later}"


def test_litserve_runs_write_a_request_log_with_the_servers_side_and_leave_no_process(run):
    log = read_request_log(run.out_dir / REQUEST_LOG_FILE)
    assert log.server_side and len(log.served) == REQUESTS
    server_pid = json.loads((run.out_dir / "server.json").read_text())["pid"]
    alive_sessions = []  # of live processes (a zombie is dead: it waits for init to reap it)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z":
            alive_sessions.append(int(fields[3]))
    assert server_pid not in alive_sessions  # LitServe's fronts, workers and queue manager are all gone
