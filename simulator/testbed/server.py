"""The testbed server: a real serving process to measure, not to simulate.

An aiohttp server on one asyncio event loop thread receives ``POST /infer?id=<int>&class=<name>
&phase=<label>`` (empty body), queues the request by the configured discipline, and ``workers``
threads run the model on batches (see :mod:`~simulator.testbed.batcher`). ``GET /health`` answers
once the model is built and warm. Each replied request is recorded with perf_counter_ns
timestamps (see :data:`~simulator.testbed.workers.RECORD_COLUMNS`); on SIGTERM/SIGINT the server
stops accepting, finishes what it holds, and writes the records (parquet) and a summary (JSON).

    python -m simulator.testbed.server --config testbed.json --records server.parquet --port 0

The first line on stdout is ``{"port": P, "pid": N}`` once the server listens; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from simulator.files import write_atomically, write_text_atomically
from simulator.terminal import visible
from simulator.testbed.batcher import NS_PER_MS, Batcher
from simulator.testbed.config import INFER_PATH, TestbedConfig
from simulator.testbed.errors import TestbedError
from simulator.testbed.queues import make_line
from simulator.testbed.workers import NO_DEADLINE_NS, InFlight, Kernel, WorkerPool, records_frame

SHUTDOWN_TIMEOUT_S = 30.0


class TestbedServer:
    """HTTP front, waiting line and worker pool of one serving process (start/stop on its event loop)."""

    __test__ = False  # not a pytest test class, despite the name

    def __init__(self, config: TestbedConfig, kernel: Kernel, clock: Callable[[], int] = time.perf_counter_ns) -> None:
        self.config = config
        self._clock = clock
        self._classes = {c.name: c for c in config.classes}
        self._relative_deadline_ns = {
            c.name: None if c.deadline_ms is None else round(c.deadline_ms * NS_PER_MS) for c in config.classes
        }
        self._batcher: Batcher[InFlight] = Batcher(make_line(config.discipline), config.batching, clock)
        self._pool = WorkerPool(kernel, self._batcher, config.workers, self._handed_back, self._occupancy, clock)
        self._in_system = 0
        self._replied: list[InFlight] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Start the workers and listen on ``host:port`` (0: any free port); returns the bound port."""
        self._loop = asyncio.get_running_loop()
        app = web.Application()
        app.router.add_get("/health", self._health)
        app.router.add_post(INFER_PATH, self._infer)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=SHUTDOWN_TIMEOUT_S)
        await self._runner.setup()
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        self._pool.start()
        await web.SockSite(self._runner, listener, backlog=1024).start()
        return listener.getsockname()[1]

    async def stop(self) -> None:
        """Stop accepting, let the requests already in finish, then stop the workers."""
        assert self._runner is not None, "stop() before start()"
        await self._runner.cleanup()
        self._batcher.close()
        await asyncio.to_thread(self._pool.join, SHUTDOWN_TIMEOUT_S)

    def records(self) -> Any:
        """The replied requests as a DataFrame (see ``RECORD_COLUMNS``); complete once stopped."""
        return records_frame(self._replied)

    def _occupancy(self) -> int:
        return self._in_system

    def _handed_back(self, batch: list[InFlight]) -> None:
        """Called on a worker thread: wake the batch's handlers on the event loop."""
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._resolve, batch)

    @staticmethod
    def _resolve(batch: list[InFlight]) -> None:
        for request in batch:
            if not request.waiter.done():
                request.waiter.set_result(None)

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "model": self.config.model_label, "workers": self.config.workers})

    async def _infer(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        arrival_ns = self._clock()
        query = request.query
        try:
            class_name, request_id = query["class"], int(query["id"])
            spec = self._classes[class_name]
        except (KeyError, ValueError):
            return web.Response(status=400, text=f"need ?id=<int>&class=<one of {sorted(self._classes)}>")
        relative_ns = self._relative_deadline_ns[class_name]
        deadline_ns = NO_DEADLINE_NS if relative_ns is None else arrival_ns + relative_ns
        item = InFlight(request_id, query.get("phase", "load"), class_name, spec.priority, deadline_ns, arrival_ns)
        self._in_system += 1
        try:
            item.in_system_at_arrival = self._in_system
            item.waiter = asyncio.get_running_loop().create_future()
            try:
                self._batcher.put(item)
            except TestbedError as refused:
                return web.Response(status=503, text=str(refused))
            await item.waiter
            response = web.Response(status=500 if item.kernel_error else 200, text=item.kernel_error or "ok")
            await response.prepare(request)
            item.reply_sent_ns = self._clock()
            await response.write_eof()
            self._replied.append(item)
            return response
        finally:
            self._in_system -= 1


def _log(message: str) -> None:
    print(visible(f"testbed server: {message}"), file=sys.stderr, flush=True)


def _cpus(text: str | None) -> set[int] | None:
    return None if text is None else {int(cpu) for cpu in text.split(",")}


async def _serve(server: TestbedServer, host: str, port: int) -> dict[str, Any]:
    """Serve until SIGTERM/SIGINT; returns what the summary says about the serving itself."""
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    bound = await server.start(host, port)
    cpu_before, wall_before = os.times(), time.monotonic()
    print(json.dumps({"port": bound, "pid": os.getpid()}), flush=True)
    await stopping.wait()
    _log("stopping")
    await server.stop()
    cpu_after = os.times()
    return {
        "host": host,
        "port": bound,
        "pid": os.getpid(),
        "serving_wall_s": round(time.monotonic() - wall_before, 3),
        "serving_cpu_s": round(cpu_after.user + cpu_after.system - cpu_before.user - cpu_before.system, 3),
    }


def main(argv: list[str] | None = None) -> int:
    """Build and warm the model, serve until signalled, then write the records and the summary."""
    parser = argparse.ArgumentParser(prog="python -m simulator.testbed.server", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, required=True, help="TestbedConfig as JSON")
    parser.add_argument("--records", type=Path, required=True, help="parquet file of the per-request records")
    parser.add_argument("--summary", type=Path, help="JSON file: config, model, CPU time, counts")
    parser.add_argument("--harness", type=Path, help="parquet file of the profiler's in-process samples (zoo model)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port (printed on stdout)")
    parser.add_argument("--cpus", help="comma-separated CPUs to pin the process to (os.sched_setaffinity)")
    args = parser.parse_args(argv)
    try:
        config = TestbedConfig.read(args.config)
        cpus = _cpus(args.cpus)
        if cpus is not None:
            os.sched_setaffinity(0, cpus)
        import torch  # after pinning, so torch's thread pool starts on the chosen CPUs

        from simulator.profiling.hardware import describe
        from simulator.testbed.kernels import build_kernel, harness_profile, warm_up

        _log(f"building {config.model_label}")
        with tempfile.TemporaryDirectory(prefix="latsim-testbed-") as workdir:
            kernel, servable = build_kernel(config, Path(workdir), _log)
        torch.set_num_threads(config.intra_op_threads)
        if args.harness is not None and servable is not None:
            _log("in-process harness profile")
            samples = harness_profile(servable, config)
            write_atomically(args.harness, lambda path: samples.to_parquet(path, index=False))
        warm_up(kernel, config)
        server = TestbedServer(config, kernel)
        serving = asyncio.run(_serve(server, args.host, args.port))
    except TestbedError as error:
        _log(f"error: {error}")
        return 2
    records = server.records()
    write_atomically(args.records, lambda path: records.to_parquet(path, index=False))
    if args.summary is not None:
        summary = {
            "config": config.model_dump(mode="json"),
            **serving,
            "cpus": sorted(os.sched_getaffinity(0)),
            "intra_op_threads": torch.get_num_threads(),
            "records": len(records),
            "records_by_phase": records["phase"].value_counts().to_dict(),
            "kernel_errors": int((records["kernel_error"] != "").sum()),
            "hardware": describe(torch.device(config.device)),
            "model": None if servable is None else servable.info,
        }
        write_text_atomically(args.summary, json.dumps(summary, indent=2, default=str))
    _log(f"stopped; {len(records)} records written to {args.records}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
