"""Hostile inputs, peers: a server at the ``--scheduler`` address that answers bytes that are not Dask's protocol.

Dask's client believes the frame lengths a peer announces; a peer that is no scheduler (an HTTP
server, random bytes, a frame of exabytes) must give a clean error naming the address (exit 2), not
an internal error. The peer is a tiny TCP server on 127.0.0.1 inside the test, alive for the test only.
"""

from __future__ import annotations

import random
import socket
import struct
import threading
from collections.abc import Iterator

import pytest

from tests.hostile import assert_clean_error, cli, write_scenario
from tests.test_plan import plan_scenario

PAYLOADS = [  # (id, what the peer sends to whoever connects)
    ("http", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"),
    ("exabyte-frame", struct.pack("<Q", 1) + struct.pack("<Q", 2**62 - 7)),
    ("short-frame", struct.pack("<Q", 1) + struct.pack("<Q", 8) + b"\xde\xad\xbe\xef" * 2),
    ("many-frames", struct.pack("<Q", 2**40)),
    ("all-ones", b"\xff" * 64),
    ("random", random.Random(28).randbytes(4096)),
]


@pytest.fixture
def peer(request) -> Iterator[str]:
    """The address of a server on 127.0.0.1 that sends ``request.param`` to every connection, then closes it."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except TimeoutError:
                continue
            with connection:
                try:
                    connection.sendall(request.param)
                    connection.settimeout(1.0)
                    connection.recv(65536)
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"tcp://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join(timeout=5)
    server.close()


@pytest.mark.parametrize("peer", [payload for _, payload in PAYLOADS], ids=[name for name, _ in PAYLOADS], indirect=True)
def test_plan_reports_a_scheduler_that_answers_garbage(tmp_path, peer):
    scenario = write_scenario(tmp_path, plan_scenario({"workers": [1, 2]}))
    result = cli("plan", scenario, "--out", tmp_path / "out", "--scheduler", peer, "--quiet", seconds=60)
    assert_clean_error(result, peer)
    assert "does not answer as a Dask scheduler" in result.stderr or "cannot reach the Dask scheduler" in result.stderr
