"""LitServe as a testbed server, inside its own processes: the served model as a ``LitAPI``, and the
hooks that time every request where LitServe lets code run.

LitServe answers HTTP in a front (uvicorn, one process per API server) and runs the model in
inference workers (one spawned process each), joined by its request queue. Each process keeps its
own records, as plain JSON written to a folder when the process stops, and ``litserve_server`` joins
them by request id into the records every testbed server writes (``workers.RECORD_COLUMNS``):

- the front (:class:`FrontRecorder`, an ASGI middleware, and :class:`RequestHooks.on_request`, called
  by LitServe just before it puts the request on its queue): the request fully read (arrival), its
  enqueue, the reply started (reply sent), the requests in that front at arrival;
- each worker (:class:`RequestHooks` around decoding and encoding, which LitServe calls once per
  call, and :meth:`ZooLitAPI.predict`): the call taken (before its first ``decode_request``), the
  kernel's start and end, the call done (after its last ``encode_response``).

What LitServe does between the hooks is not seen: a worker taking a request off the queue and
sending the answers back to the front falls between one call's end and the next call's start
(the worker's hand-off, see ``results.DERIVED_COLUMNS``). The number of requests in the server when a
worker takes a call is not seen by the worker (``in_system_at_dequeue`` is -1).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import tempfile
import time
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import litserve as ls
from fastapi import HTTPException

from simulator.files import write_text_atomically
from simulator.terminal import visible
from simulator.testbed.config import INFER_PATH, TestbedConfig

FRONT_COLUMNS = (
    "request_id", "phase", "class", "arrival_ns", "enqueue_ns", "reply_sent_ns", "in_system_at_arrival", "status",
)
WORKER_COLUMNS = (
    "request_id", "worker", "call", "batch_size", "dequeue_ns", "kernel_start_ns", "kernel_end_ns", "worker_done_ns",
    "kernel_error",
)
FRONT_FILE_PREFIX, WORKER_FILE_PREFIX = "front-", "worker-"


def _log(message: str) -> None:
    print(visible(f"testbed litserve: {message}"), file=sys.stderr, flush=True)


def write_records(folder: Path, name: str, columns: tuple[str, ...], rows: list[list[Any]]) -> None:
    """One process's records as ``{"columns": [...], "rows": [[...], ...]}`` (read back by ``litserve_server``)."""
    write_text_atomically(Path(folder) / f"{name}.json", json.dumps({"columns": list(columns), "rows": rows}))


@dataclass
class _FrontRecord:
    request_id: int
    phase: str
    class_name: str
    arrival_ns: int = -1
    enqueue_ns: int = -1
    reply_sent_ns: int = -1
    in_system_at_arrival: int = -1
    status: int = -1

    def row(self) -> list[Any]:
        return [self.request_id, self.phase, self.class_name, self.arrival_ns, self.enqueue_ns, self.reply_sent_ns,
                self.in_system_at_arrival, self.status]


_CURRENT: ContextVar[_FrontRecord | None] = ContextVar("latsim_testbed_request", default=None)


def _front_record(query_string: bytes) -> _FrontRecord | None:
    """The record of a request named ``?id=<int>&class=<name>[&phase=<label>]``; None for any other."""
    query = parse_qs(query_string.decode("latin-1"))
    try:
        return _FrontRecord(int(query["id"][0]), query.get("phase", ["load"])[0], query["class"][0])
    except (KeyError, ValueError):
        return None


class FrontRecorder:
    """ASGI middleware of LitServe's HTTP front: times each inference request, and writes the front's records
    when the front stops (its lifespan's shutdown)."""

    def __init__(self, app: Any, folder: str) -> None:
        self.app, self.folder = app, Path(folder)
        self.rows: list[list[Any]] = []
        self.in_system = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, self._on_shutdown(send))
            return
        record = _front_record(scope.get("query_string", b"")) if scope["type"] == "http" and scope["path"] == INFER_PATH else None
        if record is None:
            await self.app(scope, receive, send)
            return
        clock = time.perf_counter_ns

        async def received() -> dict[str, Any]:
            message = await receive()
            if message["type"] == "http.request" and not message.get("more_body", False) and record.arrival_ns < 0:
                record.arrival_ns = clock()
                self.in_system += 1
                record.in_system_at_arrival = self.in_system
            return message

        async def sending(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                record.status, record.reply_sent_ns = message["status"], clock()
            await send(message)

        token = _CURRENT.set(record)
        try:
            await self.app(scope, received, sending)
        finally:
            _CURRENT.reset(token)
            if record.arrival_ns >= 0:
                self.in_system -= 1
            if record.reply_sent_ns >= 0:
                self.rows.append(record.row())

    def _on_shutdown(self, send: Any) -> Any:
        async def sending(message: dict[str, Any]) -> None:
            if message["type"] in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
                write_records(self.folder, f"{FRONT_FILE_PREFIX}{os.getpid()}", FRONT_COLUMNS, self.rows)
            await send(message)

        return sending


@dataclass
class _Call:
    """One model call of a worker: its requests and timestamps."""

    dequeue_ns: int
    request_ids: list[int] = field(default_factory=list)
    kernel_start_ns: int = -1
    kernel_end_ns: int = -1
    kernel_error: str = ""


class RequestHooks(ls.Callback):
    """LitServe's callbacks: the front's enqueue (``on_request``, just before the queue put) and a worker's
    call taken and done (decoding starts, encoding ends: once per call, with batching too)."""

    def on_request(self, *args: Any, **kwargs: Any) -> None:
        record = _CURRENT.get()
        if record is not None:
            record.enqueue_ns = time.perf_counter_ns()

    def on_before_decode_request(self, *args: Any, lit_api: Any = None, **kwargs: Any) -> None:
        if isinstance(lit_api, ZooLitAPI):
            lit_api.call_taken()

    def on_after_encode_response(self, *args: Any, lit_api: Any = None, **kwargs: Any) -> None:
        if isinstance(lit_api, ZooLitAPI):
            lit_api.call_done()


class ZooLitAPI(ls.LitAPI):
    """The testbed's model (a zoo model or a user kernel, as ``kernels.build_kernel`` builds it) behind LitServe:
    a request's JSON body names it (``{"id": <int>, ...}``); ``predict`` runs the kernel once per call on the
    call's batch size; every call's timestamps are written when LitServe stops the worker (SIGTERM)."""

    def __init__(self, config: TestbedConfig, folder: str) -> None:
        super().__init__(
            max_batch_size=config.batching.max_batch_size,
            batch_timeout=config.batching.max_queue_delay_ms / 1000.0,
            api_path=INFER_PATH,
        )
        self.config, self.folder = config, folder
        self._kernel: Any = None
        self._worker = -1
        self._calls = 0
        self._call: _Call | None = None
        self._rows: list[list[Any]] = []

    def setup(self, device: str) -> None:
        """Build and warm the model in this worker process; its records are written when LitServe stops it."""
        import torch

        from simulator.testbed.kernels import build_kernel, warm_up

        self._worker = int(os.environ.get("LITSERVE_WORKER_ID", "0"))
        with tempfile.TemporaryDirectory(prefix="latsim-litserve-") as workdir:
            self._kernel, _ = build_kernel(self.config, Path(workdir), lambda message: _log(f"worker {self._worker}: {message}"))
        torch.set_num_threads(self.config.intra_op_threads)
        warm_up(self._kernel, self.config)
        signal.signal(signal.SIGTERM, self._write_and_exit)

    def call_taken(self) -> None:
        """A worker took a call off LitServe's queue (an unfinished earlier call failed before its kernel: dropped)."""
        self._call = _Call(time.perf_counter_ns())

    def decode_request(self, request, **kwargs: Any) -> int:  # noqa: ANN001  (no annotation: LitServe passes the JSON body)
        """The request's id, from its JSON body (LitServe takes an annotation here for the type to parse the body as)."""
        try:
            request_id = int(request["id"])
        except (TypeError, KeyError, ValueError):
            raise HTTPException(400, 'expected a JSON body {"id": <int>, ...}') from None
        if self._call is not None:
            self._call.request_ids.append(request_id)
        return request_id

    def predict(self, x: Any, **kwargs: Any) -> Any:
        call = self._call
        size = len(x) if isinstance(x, list) else 1
        if call is not None:
            call.kernel_start_ns = time.perf_counter_ns()
        try:
            self._kernel(size)
        except Exception as failure:
            if call is not None:
                call.kernel_end_ns, call.kernel_error = time.perf_counter_ns(), f"{type(failure).__name__}: {failure}"
                self.call_done()
            raise
        if call is not None:
            call.kernel_end_ns = time.perf_counter_ns()
        return x

    def encode_response(self, output: Any, **kwargs: Any) -> dict[str, Any]:
        return {"id": output}

    def call_done(self) -> None:
        """The call's answers are encoded: its requests' rows are kept."""
        call, self._call = self._call, None
        if call is None or call.kernel_start_ns < 0:
            return
        done_ns, size = time.perf_counter_ns(), len(call.request_ids)
        for request_id in call.request_ids:
            self._rows.append([request_id, self._worker, self._calls, size, call.dequeue_ns, call.kernel_start_ns,
                               call.kernel_end_ns, done_ns, call.kernel_error])
        self._calls += 1

    def _write_and_exit(self, signum: int, frame: Any) -> None:
        write_records(Path(self.folder), f"{WORKER_FILE_PREFIX}{self._worker}", WORKER_COLUMNS, self._rows)
        os._exit(0)
