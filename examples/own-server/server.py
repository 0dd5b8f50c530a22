"""A small model server that is not latsim's: a stdlib HTTP server, a FIFO queue and worker threads.

It stands for *your* server. The only thing it does for latsim is say when things happened: each
reply carries the server's own timestamps (ms on the server's clock), which the load generator
writes into the request log beside its own. Run it, then load it with ``load.py``:

    python examples/own-server/server.py --port 8090 --workers 1
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # one core per worker, as a serving process pins its threads

import numpy as np  # noqa: E402

MATRIX_SIZE = 320  # the "model": a few dense layers of this width


def now_ms() -> float:
    return time.monotonic_ns() / 1e6


class Model:
    """Three dense layers with a ReLU: numpy releases the GIL inside the matrix products, as torch does in kernels."""

    def __init__(self, size: int, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.weights = [rng.standard_normal((size, size)) / np.sqrt(size) for _ in range(3)]
        self.size = size

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        for weight in self.weights:
            batch = np.maximum(batch @ weight, 0.0)
        return batch


class Job:
    def __init__(self, request_id: str, arrival_ms: float) -> None:
        self.request_id, self.times, self.done = request_id, {"server_arrival_ms": arrival_ms}, threading.Event()


def worker(jobs: queue.Queue, model: Model, worker_id: int) -> None:
    rng = np.random.default_rng(worker_id)
    while True:
        job = jobs.get()
        job.times["dequeue_ms"] = now_ms()
        inputs = rng.standard_normal((32, model.size))
        job.times["service_start_ms"] = now_ms()
        model(inputs)
        job.times["service_end_ms"] = now_ms()
        job.times["worker_id"] = worker_id
        job.done.set()


def handler(jobs: queue.Queue) -> type[BaseHTTPRequestHandler]:
    class Infer(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: the load generator reuses its connections
        disable_nagle_algorithm = True  # the reply goes out at once, not after the client's delayed ACK

        def do_GET(self) -> None:  # noqa: N802 - the http.server name
            self.rfile.read(int(self.headers.get("Content-Length") or 0))  # a POST's body (latsim testbed load sends none)
            job = Job(parse_qs(urlparse(self.path).query).get("id", [""])[0], now_ms())
            jobs.put(job)
            job.done.wait()
            body = json.dumps(job.times).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_POST = do_GET  # noqa: N815 - `latsim testbed load --url` POSTs to /infer?id=…&class=…

        def log_message(self, *_: object) -> None:  # quiet: the request log is the record
            pass

    return Infer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--workers", type=int, default=1)
    options = parser.parse_args()
    jobs: queue.Queue = queue.Queue()
    model = Model(MATRIX_SIZE)
    for worker_id in range(options.workers):
        threading.Thread(target=worker, args=(jobs, model, worker_id), daemon=True).start()
    server = ThreadingHTTPServer(("127.0.0.1", options.port), handler(jobs))
    server.daemon_threads = True
    print(f"serving on http://127.0.0.1:{options.port}/infer with {options.workers} worker(s)", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
