"""The testbed: queue disciplines and batching (unit tests, fake kernels), and a real run of a
tiny model behind the HTTP server under open-loop load (a few seconds)."""

from __future__ import annotations

import itertools
import threading
import time

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("aiohttp")
pytest.importorskip("torch")

from simulator.testbed.batcher import NS_PER_MS, Batcher  # noqa: E402
from simulator.testbed.config import BatchingConfig, TestbedConfig  # noqa: E402
from simulator.testbed.errors import TestbedError  # noqa: E402
from simulator.testbed.load import LoadSpec, make_schedule  # noqa: E402
from simulator.testbed.results import join_records  # noqa: E402
from simulator.testbed.queues import EdfLine, FifoLine, PriorityLine, make_line  # noqa: E402
from simulator.testbed.run import measure_capacity, run_level  # noqa: E402
from simulator.testbed.schedule import MmppState, mmpp_times_s, poisson_times_s  # noqa: E402
from simulator.testbed.workers import InFlight, WorkerPool  # noqa: E402

SLEEP_KERNEL_S = 0.001


def sleep_kernel(max_batch_size: int):
    """A user kernel for the import hook: every call sleeps 1 ms, whatever the batch size."""
    return lambda batch_size: time.sleep(SLEEP_KERNEL_S)


def request(request_id: int, priority: int = 0, deadline_ns: int = 0) -> InFlight:
    return InFlight(request_id, "test", "a", priority, deadline_ns, arrival_ns=0)


def drain(line) -> list[int]:
    return [line.pop().request_id for _ in range(len(line))]


class FakeClock:
    def __init__(self) -> None:
        self.now_ns = 0

    def __call__(self) -> int:
        return self.now_ns

    def advance_ms(self, ms: float) -> None:
        self.now_ns += round(ms * NS_PER_MS)


# -- queue disciplines -------------------------------------------------------------------------


def test_fifo_serves_in_arrival_order():
    line = FifoLine()
    for i, priority in enumerate([2, 0, 1]):
        line.push(request(i, priority))
    assert drain(line) == [0, 1, 2]


def test_priority_serves_smallest_number_first_and_fifo_within_a_level():
    line = PriorityLine()
    for i, priority in enumerate([1, 0, 1, 2, 0]):
        line.push(request(i, priority))
    assert len(line) == 5
    assert drain(line) == [1, 4, 0, 2, 3]
    with pytest.raises(IndexError):
        line.pop()


def test_edf_serves_earliest_absolute_deadline_first_ties_by_arrival():
    line = EdfLine()
    for i, deadline_ns in enumerate([50, 10, 30, 10]):
        line.push(request(i, deadline_ns=deadline_ns))
    assert drain(line) == [1, 3, 2, 0]


def test_unknown_discipline_is_a_clear_error():
    with pytest.raises(TestbedError, match="choose from"):
        make_line("lifo")


# -- batching (fake clock) ---------------------------------------------------------------------


def test_without_batching_a_worker_takes_one_request_at_once():
    batcher = Batcher(FifoLine(), BatchingConfig(), FakeClock())
    for i in range(3):
        batcher.put(request(i))
    assert [[r.request_id for r in batcher.take_nowait()] for _ in range(4)] == [[0], [1], [2], []]


def test_full_batches_go_at_once_and_a_partial_one_waits_for_the_delay():
    clock = FakeClock()
    batcher = Batcher(FifoLine(), BatchingConfig(max_batch_size=3, max_queue_delay_ms=5), clock)
    for i in range(7):
        batcher.put(request(i))
    assert [len(batcher.take_nowait()) for _ in range(2)] == [3, 3]
    clock.advance_ms(4.999)
    assert batcher.take_nowait() == []
    clock.advance_ms(0.001)
    assert [r.request_id for r in batcher.take_nowait()] == [6]


def test_queue_delay_counts_from_the_oldest_request_not_the_first_served():
    clock = FakeClock()
    batcher = Batcher(PriorityLine(), BatchingConfig(max_batch_size=4, max_queue_delay_ms=50), clock)
    batcher.put(request(0, priority=1))
    clock.advance_ms(30)
    batcher.put(request(1, priority=0))  # served first, but younger
    assert batcher.take_nowait() == []
    clock.advance_ms(20)  # the oldest (request 0) has now waited 50 ms
    assert [r.request_id for r in batcher.take_nowait()] == [1, 0]


def test_preferred_batch_size_goes_without_waiting():
    batcher = Batcher(
        FifoLine(), BatchingConfig(max_batch_size=8, preferred_batch_sizes=(4,), max_queue_delay_ms=100), FakeClock()
    )
    for i in range(5):
        batcher.put(request(i))
    assert len(batcher.take_nowait()) == 4
    assert batcher.take_nowait() == []


def test_closing_drains_held_requests_then_stops_workers_and_refuses_new_ones():
    batcher = Batcher(FifoLine(), BatchingConfig(max_batch_size=4, max_queue_delay_ms=1e6), FakeClock())
    batcher.put(request(0))
    batcher.close()
    assert [r.request_id for r in batcher.take()] == [0]
    assert batcher.take() is None
    with pytest.raises(TestbedError, match="shutting down"):
        batcher.put(request(1))


def test_batching_config_rejects_preferred_sizes_over_the_maximum():
    with pytest.raises(TestbedError, match="exceed max_batch_size"):
        TestbedConfig.parse({"batching": {"max_batch_size": 2, "preferred_batch_sizes": [4]}})
    with pytest.raises(TestbedError, match="unique"):
        TestbedConfig.parse({"classes": [{"name": "a"}, {"name": "a"}]})


# -- worker threads (fake kernel, real clock) --------------------------------------------------


def run_pool(kernel, requests: list[InFlight], batching: BatchingConfig, workers: int = 1, gap_s: float = 0.0):
    """Serve ``requests`` put ``gap_s`` apart; returns the batches handed back and when the batcher was closed."""
    batcher = Batcher(FifoLine(), batching)
    done: list[list[InFlight]] = []
    lock = threading.Lock()

    def handed_back(batch: list[InFlight]) -> None:
        with lock:
            done.append(batch)

    pool = WorkerPool(kernel, batcher, workers, handed_back, in_system=lambda: 0)
    pool.start()
    for item in requests:
        batcher.put(item)
        time.sleep(gap_s)
    time.sleep(batching.max_queue_delay_ms / 1000 * 5)  # let a held tail go by its delay, not by close()
    closed_ns = time.perf_counter_ns()
    batcher.close()
    pool.join(timeout_s=30)
    return done, closed_ns


def test_workers_form_batches_within_limits_and_hold_partial_ones_for_the_delay():
    sizes: list[int] = []
    batching = BatchingConfig(max_batch_size=4, max_queue_delay_ms=20)
    items = [request(i) for i in range(10)]
    batches, closed_ns = run_pool(lambda size: sizes.append(size), items, batching, workers=2, gap_s=0.001)
    served = sorted(r.request_id for batch in batches for r in batch)
    assert served == list(range(10))
    assert all(1 <= len(batch) <= 4 for batch in batches) and sorted(sizes) == sorted(len(b) for b in batches)
    for batch in batches:
        stamps = [(r.enqueue_ns, r.dequeue_ns, r.kernel_start_ns, r.kernel_end_ns, r.worker_done_ns) for r in batch]
        assert all(a <= b <= c <= d <= e for a, b, c, d, e in stamps)
        assert len({r.batch_id for r in batch}) == 1 and all(r.batch_size == len(batch) for r in batch)
    partial = [batch for batch in batches if len(batch) < 4 and batch[0].dequeue_ns < closed_ns]
    for batch in partial:  # taken before close(): only because its oldest request had waited the delay
        assert batch[0].dequeue_ns - min(r.enqueue_ns for r in batch) >= 20 * NS_PER_MS


def test_a_failing_kernel_is_reported_per_request_and_the_worker_goes_on():
    calls = []

    def kernel(size: int) -> None:
        calls.append(size)
        if len(calls) == 1:
            raise RuntimeError("boom")

    batches, _ = run_pool(kernel, [request(i) for i in range(3)], BatchingConfig())
    errors = {r.request_id: r.kernel_error for batch in batches for r in batch}
    assert errors == {0: "RuntimeError: boom", 1: "", 2: ""}


# -- schedules ---------------------------------------------------------------------------------


def test_schedules_are_seeded_and_have_the_asked_rate_and_class_shares():
    times = poisson_times_s(200.0, seed=3, duration_s=50.0)
    assert np.array_equal(times, poisson_times_s(200.0, seed=3, duration_s=50.0))
    assert times.max() < 50.0 and len(times) == pytest.approx(10_000, rel=0.05)
    assert len(poisson_times_s(200.0, seed=3, requests=123)) == 123
    states = (MmppState(rate_per_s=1000.0, mean_duration_s=0.5), MmppState(rate_per_s=0.0, mean_duration_s=0.5))
    bursty = mmpp_times_s(states, seed=1, duration_s=60.0)
    assert np.all(np.diff(bursty) >= 0) and len(bursty) == pytest.approx(30_000, rel=0.3)
    spec = LoadSpec(
        url="http://x",
        classes=("a", "b"),
        shares=(3, 1),
        arrival={"process": "poisson", "rate_per_s": 100},
        requests=4000,
    )
    planned = make_schedule(spec)
    assert planned.offsets_ns[0] == 0 and np.all(np.diff(planned.offsets_ns) >= 0)
    assert np.mean(planned.class_indices == 0) == pytest.approx(0.75, abs=0.03)
    trace = LoadSpec(url="http://x", arrival={"process": "trace", "times_ms": [5.0, 1.0, 3.0]})
    assert make_schedule(trace).offsets_ns.tolist() == [0, 2_000_000, 4_000_000]


# -- the records of a run -------------------------------------------------------------------------


def records(rows: list[tuple[int, float, float, float]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Server and client records of calls (worker, enqueue, dequeue, worker done; ms), one request each."""
    ns = [[round(value * NS_PER_MS) for value in row[1:]] for row in rows]
    server = pd.DataFrame({
        "request_id": range(len(rows)), "phase": "load", "class": "a", "priority": 0, "deadline_ns": 2**62,
        "arrival_ns": [enqueue for enqueue, _, _ in ns], "enqueue_ns": [enqueue for enqueue, _, _ in ns],
        "dequeue_ns": [dequeue for _, dequeue, _ in ns], "kernel_start_ns": [dequeue for _, dequeue, _ in ns],
        "kernel_end_ns": [done for _, _, done in ns], "worker_done_ns": [done for _, _, done in ns],
        "reply_sent_ns": [done for _, _, done in ns], "worker": [row[0] for row in rows], "batch_id": range(len(rows)),
        "batch_size": 1, "in_system_at_arrival": 1, "in_system_at_dequeue": 1, "kernel_error": "",
    })
    client = pd.DataFrame({
        "request_id": range(len(rows)), "phase": "load", "class": "a", "scheduled_ns": server["enqueue_ns"],
        "send_ns": server["enqueue_ns"], "reply_received_ns": server["reply_sent_ns"] + NS_PER_MS // 10,
        "status": 200, "error": "",
    })
    return server, client


def test_service_time_counts_the_workers_hand_off_from_when_it_could_have_taken_the_call():
    calls = [  # worker, enqueue, dequeue, done (ms)
        (0, 0.0, 0.1, 1.1),  # worker 0 idle: woken in 0.1 ms
        (0, 0.5, 1.12, 2.0),  # queued behind the first: taken 0.02 ms after worker 0 was free
        (1, 0.6, 0.65, 1.6),  # worker 1's first call
        (1, 3.0, 3.2, 4.0),  # worker 1 idle again: woken in 0.2 ms
    ]
    table = join_records(*records(calls), origin_ns=0, batching=False).sort_values("request_id")
    assert table["handoff_ms"].to_numpy() == pytest.approx([0.1, 0.02, 0.05, 0.2])
    assert table["service_ms"].to_numpy() == pytest.approx([1.1, 0.9, 1.0, 1.0])
    for worker, group in table.groupby("worker"):  # the queue's view: free again = ready + service time
        ready = np.maximum(group["enqueue_ms"].to_numpy(), np.r_[-np.inf, group["worker_done_ms"].to_numpy()[:-1]])
        assert group["worker_done_ms"].to_numpy() == pytest.approx(ready + group["service_ms"].to_numpy())
    batched = join_records(*records(calls), origin_ns=0, batching=True)
    assert batched["handoff_ms"].isna().all() and (batched["service_ms"] == batched["worker_busy_ms"]).all()


# -- a real server under real load -------------------------------------------------------------

REQUESTS, PROFILE_REQUESTS = 300, 20


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    config = TestbedConfig.parse(
        {
            "model": {"family": "mlp", "size": "tiny"},
            "workers": 1,
            "discipline": "priority",
            "classes": [
                {"name": "urgent", "share": 1, "priority": 0, "deadline_ms": 50},
                {"name": "bulk", "share": 2, "priority": 1},
            ],
            "warmup_calls": 5,
        }
    )
    out = tmp_path_factory.mktemp("testbed")
    return run_level(config, 100.0, out, requests=REQUESTS, seed=1, profile_requests=PROFILE_REQUESTS, harness=False)


def test_every_request_is_answered_and_joined_with_its_server_record(run):
    table = run.requests()
    assert len(table) == REQUESTS and table["request_id"].is_unique
    assert set(table["request_id"]) == set(range(PROFILE_REQUESTS, PROFILE_REQUESTS + REQUESTS))
    assert (table["status"] == 200).all() and table["server_ms"].notna().all()
    assert set(table["class"]) == {"urgent", "bulk"} and (table["phase"] == "load").all()
    assert table.loc[table["class"] == "urgent", "deadline_ms"].eq(50).all()
    assert table.loc[table["class"] == "bulk", "deadline_ms"].isna().all()
    server = pd.read_parquet(run.out_dir / "server.parquet")
    assert len(server) == REQUESTS + PROFILE_REQUESTS


def test_timestamps_are_ordered_on_one_clock_across_processes(run):
    table = run.requests()
    order = [
        "scheduled_ms",
        "send_ms",
        "arrival_ms",
        "enqueue_ms",
        "dequeue_ms",
        "kernel_start_ms",
        "kernel_end_ms",
        "reply_sent_ms",
        "reply_received_ms",
    ]
    for earlier, later in itertools.pairwise(order):
        assert (table[later] >= table[earlier]).all(), f"{earlier} after {later}"
    assert (table["worker_done_ms"] >= table["kernel_end_ms"]).all()
    parts = table["server_ms"] - table["wait_ms"] - table["kernel_ms"] - table["worker_overhead_ms"]
    assert (parts >= -1e-6).all()  # what remains is the event loop's part: request read → enqueue
    assert np.allclose(table["latency_ms"], table["server_ms"] + table["transport_ms"])
    assert (table["handoff_ms"] >= 0).all() and (table["handoff_ms"] <= table["wait_ms"] + 1e-9).all()
    assert table["scheduled_ms"].min() == 0.0


def test_summary_reports_lateness_cpu_and_a_verdict(run):
    summary = run.summary
    lateness = summary["lateness_ms"]
    assert 0 <= lateness["p50"] <= lateness["p99"] <= lateness["max"] < 10_000
    assert isinstance(summary["valid"], bool)
    assert all("lateness" in reason for reason in summary["invalid_reasons"])  # no failures, at most a slow sender
    assert summary["offered_rate_per_s"] == pytest.approx(100.0, rel=0.3)
    assert summary["load"]["served"] == REQUESTS and summary["load"]["mean_batch_size"] == 1
    assert summary["cpu"]["load_generator_cores_while_sending"] > 0
    for name in ("requests.parquet", "profile.parquet", "server.json", "run.json", "load-client.json"):
        assert (run.out_dir / name).is_file()


def test_closed_loop_profile_keeps_one_request_outstanding(run):
    profile = pd.read_parquet(run.out_dir / "profile.parquet")
    assert len(profile) == PROFILE_REQUESTS and (profile["status"] == 200).all()
    assert (profile["in_system_at_arrival"] == 1).all()
    assert (profile["send_ms"].iloc[1:].to_numpy() >= profile["reply_received_ms"].iloc[:-1].to_numpy()).all()


def test_capacity_of_a_user_kernel_is_bounded_by_its_service_time(tmp_path):
    config = TestbedConfig.parse({"kernel": "tests.test_testbed:sleep_kernel", "warmup_calls": 1})
    capacity = measure_capacity(config, tmp_path, requests=200)
    assert capacity.valid and capacity.concurrency == 1
    assert 0 < capacity.throughput_per_s <= capacity.worker_limit_per_s * 1.05 <= 1.05 / SLEEP_KERNEL_S
    assert (tmp_path / "capacity.json").is_file()
