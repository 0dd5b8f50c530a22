"""The testbed's LitServe server: the scenario's model served by LitServe, recorded as the aiohttp
server records (same command line, same files, same first stdout line).

The scenario's workers are LitServe's ``workers_per_device`` (one process each), its dynamic batching
LitServe's ``max_batch_size`` and ``batch_timeout`` (``max_queue_delay_ms`` / 1000); requests go to
``POST /infer`` (see :mod:`~simulator.testbed.litserve_api` for the hooks). LitServe's own rule for a
batch differs from Triton's, which latsim's batcher models: a free worker collects requests for
``batch_timeout`` from the moment it starts collecting, not from the oldest request's arrival.

    python -m simulator.testbed.litserve_server --config testbed.json --records server.parquet

On SIGTERM/SIGINT LitServe shuts down as on Ctrl-C (its fronts finish the requests they hold, then
its workers stop and write their records); then the records are joined and written.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import signal
import socket
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pandas as pd

from simulator.files import write_atomically, write_text_atomically
from simulator.terminal import visible
from simulator.testbed.config import TestbedConfig, refuse_unservable
from simulator.testbed.errors import TestbedError
from simulator.testbed.litserve_api import (
    FRONT_COLUMNS,
    FRONT_FILE_PREFIX,
    WORKER_COLUMNS,
    WORKER_FILE_PREFIX,
)
from simulator.testbed.workers import NO_DEADLINE_NS, typed_records

HEALTH_POLL_S = 0.1
NOT_SEEN = -1  # a record's field the LitServe hooks could not see
NS_PER_MS = 1_000_000


def _log(message: str) -> None:
    print(visible(f"testbed litserve: {message}"), file=sys.stderr, flush=True)


def _read_records(folder: Path, prefix: str, columns: tuple[str, ...]) -> pd.DataFrame:
    """Every process's records of one kind (front or worker), in one frame."""
    frames = []
    for path in sorted(Path(folder).glob(f"{prefix}*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        frames.append(pd.DataFrame(data["rows"], columns=data["columns"]))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(columns))


def server_records(front: pd.DataFrame, calls: pd.DataFrame, config: TestbedConfig) -> pd.DataFrame:
    """The fronts' and the workers' records joined by request id, in the columns of ``workers.RECORD_COLUMNS``:
    one row per replied request, batch ids numbered over all workers in the order their calls were taken."""
    joined = front.merge(calls, on="request_id", how="left", validate="one_to_one")
    unseen = joined["worker"].isna()
    keys = joined.loc[~unseen, ["worker", "call", "dequeue_ns"]].drop_duplicates(["worker", "call"]).sort_values("dequeue_ns")
    batch_ids = pd.Series(range(len(keys)), index=pd.MultiIndex.from_frame(keys[["worker", "call"]]))
    joined["batch_id"] = [
        NOT_SEEN if missing else batch_ids[(worker, call)]
        for missing, worker, call in zip(unseen, joined["worker"], joined["call"])
    ]
    classes = {c.name: c for c in config.classes}
    joined["priority"] = [classes[name].priority if name in classes else 0 for name in joined["class"]]
    joined["deadline_ns"] = [
        NO_DEADLINE_NS if name not in classes or classes[name].deadline_ms is None
        else arrival + round(classes[name].deadline_ms * NS_PER_MS)
        for name, arrival in zip(joined["class"], joined["arrival_ns"])
    ]
    joined["in_system_at_dequeue"] = NOT_SEEN
    joined["kernel_error"] = joined["kernel_error"].where(~unseen, "no worker recorded this request")
    filled = {c: NOT_SEEN for c in WORKER_COLUMNS if c not in ("request_id", "kernel_error")}
    return typed_records(joined.fillna(filled))


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def _announce_when_healthy(url: str, port: int, stop: threading.Event) -> None:
    """Print the port line once LitServe's health check passes (every worker is set up)."""
    while not stop.is_set():
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=5) as response:
                if response.status == 200:
                    print(json.dumps({"port": port, "pid": os.getpid()}), flush=True)
                    return
        except (urllib.error.URLError, OSError):
            pass
        stop.wait(HEALTH_POLL_S)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # LitServe's graceful shutdown is its Ctrl-C path


def _default_sigterm() -> None:
    """In LitServe's forked processes (its queue manager, its fronts): SIGTERM stops them as LitServe expects."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _serve(config: TestbedConfig, folder: Path, host: str, port: int) -> dict[str, Any]:
    """Run LitServe until SIGTERM/SIGINT; every child process is gone when this returns."""
    import litserve as ls

    from simulator.testbed.litserve_api import FrontRecorder, RequestHooks, ZooLitAPI

    server = ls.LitServer(
        ZooLitAPI(config, str(folder)), accelerator=config.device, devices=1, workers_per_device=config.workers,
        callbacks=[RequestHooks()], middlewares=[(FrontRecorder, {"folder": str(folder)})],
    )
    stop = threading.Event()
    announcer = threading.Thread(
        target=_announce_when_healthy, args=(f"http://{host}:{port}", port, stop), daemon=True
    )
    wall_before = time.monotonic()
    announcer.start()
    try:
        server.run(host=host, port=port, log_level="warning", generate_client_file=False)
    except KeyboardInterrupt:  # before LitServe's own handling began (still starting up)
        pass
    finally:
        stop.set()
        for child in multiprocessing.active_children():  # whatever LitServe left running
            child.kill()
            child.join()
    usage = os.times()
    return {
        "host": host,
        "port": port,
        "pid": os.getpid(),
        "serving_wall_s": round(time.monotonic() - wall_before, 3),
        "serving_cpu_s": round(usage.user + usage.system + usage.children_user + usage.children_system, 3),
    }


def main(argv: list[str] | None = None) -> int:
    """Serve with LitServe until signalled, then join the processes' records and write them and the summary."""
    parser = argparse.ArgumentParser(prog="python -m simulator.testbed.litserve_server", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, required=True, help="TestbedConfig as JSON (server litserve)")
    parser.add_argument("--records", type=Path, required=True, help="parquet file of the per-request records")
    parser.add_argument("--summary", type=Path, help="JSON file: config, CPU time, counts")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port (printed on stdout)")
    parser.add_argument("--cpus", help="comma-separated CPUs to pin the process and its children to")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    os.register_at_fork(after_in_child=_default_sigterm)
    try:
        config = TestbedConfig.read(args.config)
        refuse_unservable(config, str(args.config))
        if args.cpus is not None:
            os.sched_setaffinity(0, {int(cpu) for cpu in args.cpus.split(",")})
        with tempfile.TemporaryDirectory(prefix="latsim-litserve-records-") as folder:
            _log(f"serving {config.model_label} with {config.workers} worker process(es)")
            serving = _serve(config, Path(folder), args.host, args.port or _free_port(args.host))
            records = server_records(
                _read_records(Path(folder), FRONT_FILE_PREFIX, FRONT_COLUMNS),
                _read_records(Path(folder), WORKER_FILE_PREFIX, WORKER_COLUMNS),
                config,
            )
    except TestbedError as error:
        _log(f"error: {error}")
        return 2
    write_atomically(args.records, lambda path: records.to_parquet(path, index=False))
    if args.summary is not None:
        summary = {
            "config": config.model_dump(mode="json"),
            **serving,
            "cpus": sorted(os.sched_getaffinity(0)),
            "records": len(records),
            "records_by_phase": records["phase"].value_counts().to_dict(),
            "kernel_errors": int((records["kernel_error"] != "").sum()),
        }
        write_text_atomically(args.summary, json.dumps(summary, indent=2, default=str))
    _log(f"stopped; {len(records)} records written to {args.records}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
