"""The load generator: a separate process that sends requests to a testbed server.

**Open loop** (``mode: open``): every request is sent at its precomputed scheduled time (see
:mod:`~simulator.testbed.schedule`), whether or not earlier replies came back; each one is its own
asyncio task over a warm keep-alive connection pool. Latency is timed from the *scheduled* send
time to the reply, so a late sender adds to latency instead of hiding it (no coordinated
omission). **Closed loop** (``mode: closed``): ``concurrency`` clients each send back to back
(one outstanding request each): the profile a user takes before deploying, and capacity.

The event loop uses ``select(2)`` (µs timeouts) instead of epoll, whose 1 ms timeout granularity
alone would make every send up to 1 ms late (select limits the pool to ``MAX_CONNECTIONS``), and
the process asks Linux for a 1 ns timer slack instead of 50 µs: on this project's VM a timed
wake-up is then ~50 µs late at the median instead of ~100 µs (epoll: ~700 µs).

**Requests**: ``POST <url><path>?id=<int>&class=<name>&phase=<label>`` (path ``/infer`` by default) with
the same as a JSON body, ``{"id": <int>, "class": <name>, "phase": <label>}``; a reply with status 200
is served, any other status failed. Before the first send, ``GET <url>/health`` (answered 200) opens
the warm connections.

**Validity rule** (open loop): the run is INVALID when the sender fell behind — p99 of lateness
(actual − scheduled send) above ``max_p99_lateness_ms`` (default 1 ms) or any lateness above
``max_lateness_ms`` (default 10 ms) — or when any request failed (transport error, timeout, or a
status other than 200). Lateness, CPU time and the verdict are in the summary.

    python -m simulator.testbed.load --spec load.json --out client.parquet --summary client.json
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import gc
import json
import os
import selectors
import sys
import time
from pathlib import Path
from typing import Annotated, Any, Literal

import aiohttp
import numpy as np
import pandas as pd
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    ValidationError,
    model_validator,
)
from yarl import URL

from simulator.files import write_atomically, write_text_atomically
from simulator.terminal import visible
from simulator.testbed.config import INFER_PATH
from simulator.testbed.errors import TestbedError, invalid
from simulator.testbed.schedule import MmppState, Schedule, mmpp_times_s, poisson_times_s, schedule

MAX_CONNECTIONS = 900  # select(2) handles file descriptors below 1024
ERROR_STATUS = -1  # status of a request that got no HTTP reply (connection error, timeout)
NS_PER_MS = 1_000_000
PR_SET_TIMERSLACK = 29  # prctl option (Linux)
JSON_HEADERS = {"Content-Type": "application/json"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PoissonArrival(_Strict):
    process: Literal["poisson"] = "poisson"
    rate_per_s: PositiveFloat


class MmppArrival(_Strict):
    """Bursts: states visited in cycle, each with a Poisson rate and an exponential mean duration."""

    process: Literal["mmpp"] = "mmpp"
    states: tuple[MmppState, ...] = Field(min_length=2)


class TraceArrival(_Strict):
    """Replays arrival timestamps (ms, any origin); the run is the trace."""

    process: Literal["trace"] = "trace"
    times_ms: tuple[NonNegativeFloat, ...] = Field(min_length=1)


Arrival = Annotated[PoissonArrival | MmppArrival | TraceArrival, Field(discriminator="process")]


class LoadSpec(_Strict):
    """What one load generator run sends, where, and when it counts as valid."""

    url: str = Field(description="the server's base URL, e.g. http://127.0.0.1:8000")
    path: str = Field(INFER_PATH, pattern=r"^/[A-Za-z0-9_./-]*$", description="where requests are posted, on the server")
    mode: Literal["open", "closed"] = "open"
    phase: str = Field("load", pattern=r"^[A-Za-z0-9_-]+$", description="label the server records with each request")
    classes: tuple[str, ...] = ("default",)
    shares: tuple[PositiveFloat, ...] = (1.0,)
    arrival: Arrival | None = Field(None, description="open loop: the arrival process")
    duration_s: PositiveFloat | None = None
    requests: PositiveInt | None = None
    concurrency: PositiveInt = Field(1, description="closed loop: clients sending back to back")
    seed: int = 0
    id_start: NonNegativeInt = Field(0, description="first request id (ids must be unique per server)")
    connections: PositiveInt = Field(512, le=MAX_CONNECTIONS)
    warm_connections: NonNegativeInt = Field(64, description="keep-alive connections opened before the first send")
    timeout_s: PositiveFloat = 60.0
    start_delay_ms: NonNegativeFloat = Field(100.0, description="from the end of setup to the first scheduled send")
    max_p99_lateness_ms: PositiveFloat = 1.0
    max_lateness_ms: PositiveFloat = 10.0
    cpus: tuple[NonNegativeInt, ...] | None = Field(None, description="pin the process (os.sched_setaffinity)")

    @model_validator(mode="after")
    def _consistent(self) -> LoadSpec:
        if len(self.classes) != len(self.shares):
            raise ValueError(f"{len(self.classes)} classes but {len(self.shares)} shares")
        if self.mode == "open" and self.arrival is None:
            raise ValueError("an open-loop run needs `arrival`")
        if self.mode == "closed" and (self.requests is None or self.arrival is not None):
            raise ValueError("a closed-loop run needs `requests` and no `arrival`")
        if self.warm_connections > self.connections:
            raise ValueError(f"warm_connections {self.warm_connections} exceed connections {self.connections}")
        return self

    @classmethod
    def parse(cls, data: dict[str, Any] | str, origin: str = "load spec") -> LoadSpec:
        """Validate a dict or a JSON string; an invalid one raises :class:`TestbedError` naming every problem."""
        try:
            return cls.model_validate_json(data) if isinstance(data, str) else cls.model_validate(data)
        except ValidationError as error:
            raise invalid(error, origin) from None

    @classmethod
    def read(cls, path: Path) -> LoadSpec:
        return cls.parse(Path(path).read_text(encoding="utf-8"), origin=str(path))


def make_schedule(spec: LoadSpec) -> Schedule:
    """The open-loop schedule of ``spec`` (closed loop: every request due at 0, class drawn the same way)."""
    arrival, extent = spec.arrival, {"duration_s": spec.duration_s, "requests": spec.requests}
    if arrival is None:
        times_s = np.zeros(spec.requests or 0)
    elif isinstance(arrival, PoissonArrival):
        times_s = poisson_times_s(arrival.rate_per_s, spec.seed, **extent)
    elif isinstance(arrival, MmppArrival):
        times_s = mmpp_times_s(arrival.states, spec.seed, **extent)
    else:
        times_s = np.sort(np.asarray(arrival.times_ms)) / 1000.0
        times_s = times_s[: spec.requests] if spec.requests else times_s
        times_s = times_s[times_s - times_s[0] < spec.duration_s] if spec.duration_s else times_s
    return schedule(times_s, spec.shares, spec.seed)


class _Records:
    """Per-request client times (ns, perf_counter), statuses and errors, in preallocated arrays."""

    def __init__(self, count: int) -> None:
        self.scheduled_ns = np.zeros(count, dtype=np.int64)
        self.send_ns = np.full(count, -1, dtype=np.int64)
        self.reply_received_ns = np.full(count, -1, dtype=np.int64)
        self.status = np.zeros(count, dtype=np.int16)
        self.errors: dict[int, str] = {}


def request_body(request_id: int, class_name: str, phase: str) -> bytes:
    """The JSON body of a request (what the query string says too): ``{"id": <int>, "class": <name>, "phase": <label>}``."""
    return json.dumps({"id": request_id, "class": class_name, "phase": phase}).encode()


async def _send(session: aiohttp.ClientSession, request: tuple[URL, bytes], index: int, records: _Records) -> None:
    url, body = request
    records.send_ns[index] = time.perf_counter_ns()
    try:
        async with session.post(url, data=body, headers=JSON_HEADERS) as response:
            body = await response.read()
            records.status[index] = response.status
            if response.status != 200:
                records.errors[index] = body[:200].decode(errors="replace")
    except (TimeoutError, aiohttp.ClientError) as error:
        records.status[index] = ERROR_STATUS
        records.errors[index] = f"{type(error).__name__}: {error}"
    records.reply_received_ns[index] = time.perf_counter_ns()


async def _open_loop(
    session: aiohttp.ClientSession,
    requests: list[tuple[URL, bytes]],
    offsets_ns: np.ndarray,
    records: _Records,
    start_delay_ns: int,
) -> None:
    """Start request i at t0 + offsets_ns[i], never waiting for replies."""
    clock = time.perf_counter_ns
    records.scheduled_ns[:] = clock() + start_delay_ns + offsets_ns
    pending: set[asyncio.Task] = set()
    for index, due_ns in enumerate(records.scheduled_ns.tolist()):
        wait_ns = due_ns - clock()
        if wait_ns > 0:
            await asyncio.sleep(wait_ns / 1e9)
        task = asyncio.create_task(_send(session, requests[index], index, records))
        pending.add(task)
        task.add_done_callback(pending.discard)
    if pending:
        await asyncio.wait(pending)


async def _closed_loop(
    session: aiohttp.ClientSession, requests: list[tuple[URL, bytes]], records: _Records, concurrency: int
) -> None:
    """``concurrency`` clients, each sending its next request as soon as its previous reply is in."""
    indices = iter(range(len(requests)))

    async def client() -> None:
        for index in indices:  # one iterator shared by the clients: each request is sent once
            records.scheduled_ns[index] = time.perf_counter_ns()
            await _send(session, requests[index], index, records)

    await asyncio.gather(*(client() for _ in range(concurrency)))


async def _warm(session: aiohttp.ClientSession, base: URL, connections: int) -> None:
    """Open ``connections`` keep-alive connections (concurrent health checks), so none opens mid-run."""

    async def check() -> None:
        async with session.get(base / "health") as response:
            response.raise_for_status()
            await response.read()

    await asyncio.gather(*(check() for _ in range(connections)))


def _lateness_ms(records: _Records) -> dict[str, float]:
    lateness_ms = (records.send_ns - records.scheduled_ns) / NS_PER_MS
    return {
        "p50": float(np.percentile(lateness_ms, 50)),
        "p99": float(np.percentile(lateness_ms, 99)),
        "max": float(lateness_ms.max()),
        "mean": float(lateness_ms.mean()),
    }


async def _drive(spec: LoadSpec, sched: Schedule) -> tuple[_Records, dict[str, Any]]:
    base = URL(spec.url)
    requests = [
        (
            base.with_path(spec.path).with_query(id=spec.id_start + index, **{"class": spec.classes[c]}, phase=spec.phase),
            request_body(spec.id_start + index, spec.classes[c], spec.phase),
        )
        for index, c in enumerate(sched.class_indices.tolist())
    ]
    records = _Records(len(sched))
    connector = aiohttp.TCPConnector(limit=spec.connections, limit_per_host=0, keepalive_timeout=3600)
    timeout = aiohttp.ClientTimeout(total=spec.timeout_s)
    async with aiohttp.ClientSession(
        connector=connector, timeout=timeout, cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=False
    ) as session:
        await _warm(session, base, spec.warm_connections)
        gc.collect()
        gc.freeze()  # setup objects leave the collector's view: fewer, shorter pauses while sending
        cpu_before, wall_before = os.times(), time.perf_counter()
        if spec.mode == "open":
            await _open_loop(session, requests, sched.offsets_ns, records, round(spec.start_delay_ms * NS_PER_MS))
        else:
            await _closed_loop(session, requests, records, spec.concurrency)
        cpu_after, wall_s = os.times(), time.perf_counter() - wall_before
    cpu_s = cpu_after.user + cpu_after.system - cpu_before.user - cpu_before.system
    return records, {"wall_s": round(wall_s, 3), "cpu_s": round(cpu_s, 3), "cpu_cores_used": round(cpu_s / wall_s, 3)}


def _verdict(spec: LoadSpec, records: _Records, lateness_ms: dict[str, float] | None) -> list[str]:
    """Why the run is invalid (empty: valid)."""
    reasons = []
    failed = int((records.status != 200).sum())
    if failed:
        reasons.append(
            f"{failed} of {len(records.status)} requests failed (e.g. {next(iter(records.errors.values()), '')!r})"
        )
    if lateness_ms is not None and lateness_ms["p99"] > spec.max_p99_lateness_ms:
        reasons.append(f"sender fell behind: p99 lateness {lateness_ms['p99']:.3f} ms > {spec.max_p99_lateness_ms} ms")
    if lateness_ms is not None and lateness_ms["max"] > spec.max_lateness_ms:
        reasons.append(f"sender fell behind: max lateness {lateness_ms['max']:.3f} ms > {spec.max_lateness_ms} ms")
    return reasons


CLIENT_COLUMNS = {
    "request_id": "request id (sent to the server)",
    "phase": "the run's phase label",
    "class": "request class name",
    "scheduled_ns": "when it was due (closed loop: when its client was ready to send)",
    "send_ns": "when its task started sending",
    "reply_received_ns": "when the whole reply was read (or the request failed)",
    "status": f"HTTP status; {ERROR_STATUS}: no reply",
    "error": "empty, or the error / non-200 body",
}


def _tight_timer_slack() -> None:
    """Ask Linux to wake timed sleeps of this thread within 1 ns of their time (default slack: 50 µs)."""
    if sys.platform == "linux":
        ctypes.CDLL(None).prctl(PR_SET_TIMERSLACK, 1, 0, 0, 0)


def run_load(spec: LoadSpec) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Send the load of ``spec``; returns the client records (``CLIENT_COLUMNS``) and a summary with the verdict."""
    sched = make_schedule(spec)
    _tight_timer_slack()
    with asyncio.Runner(loop_factory=lambda: asyncio.SelectorEventLoop(selectors.SelectSelector())) as runner:
        records, usage = runner.run(_drive(spec, sched))
    lateness_ms = _lateness_ms(records) if spec.mode == "open" else None
    reasons = _verdict(spec, records, lateness_ms)
    frame = pd.DataFrame(
        {
            "request_id": np.arange(spec.id_start, spec.id_start + len(sched), dtype=np.int64),
            "phase": pd.array([spec.phase] * len(sched), dtype="string"),
            "class": pd.array([spec.classes[c] for c in sched.class_indices.tolist()], dtype="string"),
            "scheduled_ns": records.scheduled_ns,
            "send_ns": records.send_ns,
            "reply_received_ns": records.reply_received_ns,
            "status": records.status,
            "error": pd.array([records.errors.get(i, "") for i in range(len(sched))], dtype="string"),
        }
    )
    span_s = (records.scheduled_ns[-1] - records.scheduled_ns[0]) / 1e9
    summary = {
        "spec": spec.model_dump(mode="json", exclude={"arrival"}) | {"arrival": _arrival_summary(spec)},
        "requests": len(sched),
        "ok": int((records.status == 200).sum()),
        "failed": int((records.status != 200).sum()),
        "t0_ns": int(records.scheduled_ns.min()),
        "offered_rate_per_s": round((len(sched) - 1) / span_s, 3) if spec.mode == "open" and span_s > 0 else None,
        "lateness_ms": lateness_ms,
        **usage,
        "cpus": sorted(os.sched_getaffinity(0)),
        "valid": not reasons,
        "invalid_reasons": reasons,
    }
    return frame, summary


def _arrival_summary(spec: LoadSpec) -> dict[str, Any] | None:
    """The arrival process without a trace's timestamps (they are the schedule itself)."""
    if spec.arrival is None:
        return None
    if isinstance(spec.arrival, TraceArrival):
        return {"process": "trace", "timestamps": len(spec.arrival.times_ms)}
    return spec.arrival.model_dump(mode="json")


def main(argv: list[str] | None = None) -> int:
    """Run a load spec from a JSON file and write the records (parquet) and summary (JSON) atomically."""
    parser = argparse.ArgumentParser(prog="python -m simulator.testbed.load", description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", type=Path, required=True, help="LoadSpec as JSON")
    parser.add_argument("--out", type=Path, required=True, help="parquet file of the client records")
    parser.add_argument("--summary", type=Path, required=True, help="JSON summary: lateness, CPU time, verdict")
    args = parser.parse_args(argv)
    try:
        spec = LoadSpec.read(args.spec)
        if spec.cpus is not None:
            os.sched_setaffinity(0, spec.cpus)
        frame, summary = run_load(spec)
    except TestbedError as error:
        print(visible(f"testbed load: error: {error}"), file=sys.stderr)
        return 2
    write_atomically(args.out, lambda path: frame.to_parquet(path, index=False))
    write_text_atomically(args.summary, json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
