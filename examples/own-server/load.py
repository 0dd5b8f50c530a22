"""An open-loop load generator that writes latsim's request-log format: one JSON line per request.

Requests leave at Poisson-scheduled times whatever the replies (open loop), over keep-alive
connections; each line holds the client's times, the status and the server's timestamps from the
reply. ``--closed-loop N`` instead sends N requests one at a time and writes their service times
(``profile.csv``): the profile a user takes before deploying.

    python examples/own-server/load.py --url http://127.0.0.1:8090 --rate 200 --duration-s 20 --out logs/run-200.jsonl
    python examples/own-server/load.py --url http://127.0.0.1:8090 --closed-loop 2000 --out profile.csv
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from urllib.parse import urlparse

import numpy as np


def now_ms() -> float:
    return time.monotonic_ns() / 1e6


class Connections:
    """Idle keep-alive connections to the server, opened as needed."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port, self.idle = host, port, []

    async def request(self, path: str) -> tuple[int, dict]:
        reader, writer = self.idle.pop() if self.idle else await asyncio.open_connection(self.host, self.port)
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\n\r\n".encode())
        await writer.drain()
        status = int((await reader.readline()).split()[1])
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        body = json.loads(await reader.readexactly(length)) if length else {}
        self.idle.append((reader, writer))
        return status, body


async def one(connections: Connections, request_id: int, scheduled_ms: float, rate: float | None, records: list) -> None:
    delay_s = (scheduled_ms - now_ms()) / 1000.0
    if delay_s > 0:
        await asyncio.sleep(delay_s)
    record = {"request_id": request_id, "class": "default", "scheduled_send_ms": scheduled_ms, "client_send_ms": now_ms()}
    try:
        record["status"], server_times = await connections.request(f"/infer?id={request_id}")
        record |= server_times
    except (OSError, ValueError, IndexError, asyncio.IncompleteReadError):
        record["status"] = 0
    record["client_receive_ms"] = now_ms()
    if rate is not None:
        record["target_rate_per_s"] = rate
    records.append(record)


async def open_loop(url: str, rate: float, duration_s: float, seed: int) -> list[dict]:
    parsed = urlparse(url)
    connections = Connections(parsed.hostname, parsed.port)
    gaps_ms = np.random.default_rng(seed).exponential(1000.0 / rate, int(rate * duration_s))
    start = now_ms() + 200.0
    records: list[dict] = []
    await asyncio.gather(*(one(connections, i, start + offset, rate, records) for i, offset in enumerate(np.cumsum(gaps_ms))))
    return sorted(records, key=lambda record: record["request_id"])


async def closed_loop(url: str, requests: int) -> list[dict]:
    parsed = urlparse(url)
    connections = Connections(parsed.hostname, parsed.port)
    records: list[dict] = []
    for request_id in range(requests):
        await one(connections, request_id, now_ms(), None, records)
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--rate", type=float, help="Poisson arrivals per second (open loop)")
    parser.add_argument("--duration-s", type=float, default=20.0)
    parser.add_argument("--closed-loop", type=int, help="send this many requests one at a time instead: a profile")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    options = parser.parse_args()
    if options.closed_loop:
        records = asyncio.run(closed_loop(options.url, options.closed_loop))
        service_ms = [r["service_end_ms"] - r["service_start_ms"] for r in records[len(records) // 10:] if r["status"] == 200]
        options.out.write_text("service_ms\n" + "".join(f"{value:.6f}\n" for value in service_ms))
        print(f"profile: {len(service_ms)} calls, mean {np.mean(service_ms):.4f} ms -> {options.out}")
        return
    records = asyncio.run(open_loop(options.url, options.rate, options.duration_s, options.seed))
    options.out.write_text("".join(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in r.items()}) + "\n"
                                   for r in records))
    late = np.array([r["client_send_ms"] - r["scheduled_send_ms"] for r in records])
    print(f"{sum(r['status'] == 200 for r in records)} of {len(records)} answered; sender lateness p99 "
          f"{np.percentile(late, 99):.2f} ms -> {options.out}")


if __name__ == "__main__":
    main()
