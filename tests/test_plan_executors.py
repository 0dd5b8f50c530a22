"""Executors and resuming: a plan gives one answer on every executor, after a killed worker, and after being killed itself."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from simulator.planning.api import plan
from simulator.planning.store import STORE_FILE
from simulator.runner.executors import ProcessPoolTaskExecutor, make_executor
from simulator.scenario.loader import load_scenario
from tests.test_plan import plan_scenario

ROOT = Path(__file__).resolve().parent.parent
RUN_DEPENDENT = {  # what depends on the run itself, not on the plan: wall time, executor, command line, what was resumed
    ("search", "seconds"), ("search", "point_seconds"), ("search", "points_simulated"), ("search", "points_reused"), ("inputs", "executor"), ("inputs", "command"),
}

pytest.importorskip("distributed")


def comparable(document: dict[str, Any]) -> dict[str, Any]:
    """The document without what depends on the run itself (``RUN_DEPENDENT``)."""
    return {
        section: {k: v for k, v in value.items() if (section, k) not in RUN_DEPENDENT} if isinstance(value, dict) else value
        for section, value in document.items()
    }


@pytest.fixture(scope="module")
def scenario_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("scenario") / "plan.yaml"
    data = plan_scenario({"replicas": [1, 2, 3], "workers": [1, 2]}, max_load_tolerance=0.1)
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def reference(scenario_file, tmp_path_factory) -> dict[str, Any]:
    """The plan on a local process pool of 2 workers."""
    with ProcessPoolTaskExecutor(2) as executor:
        return plan(load_scenario(scenario_file), tmp_path_factory.mktemp("pool"), executor)


def test_dask_local_cluster_gives_the_process_pool_answer(scenario_file, reference, tmp_path):
    with make_executor("dask", 2) as executor:
        assert executor.workers == 2
        document = plan(load_scenario(scenario_file), tmp_path, executor)
    assert comparable(document) == comparable(reference)
    assert document["finalists"] and document["search"]["points_simulated"] == reference["search"]["points_simulated"]


def test_a_killed_dask_worker_does_not_change_the_answer(scenario_file, reference, tmp_path):
    """A worker killed while it runs a point: Dask reruns the point elsewhere and the plan ends with the same answer."""
    killed: list[int] = []
    with make_executor("dask", 2) as executor:
        client = executor.client
        pids = client.run(os.getpid)

        def kill_a_busy_worker(done: int, _scheduled: int) -> None:
            if killed or done < 3:
                return
            busy = [address for address, keys in client.processing().items() if keys]
            if busy:
                os.kill(pids[busy[0]], signal.SIGKILL)
                killed.append(pids[busy[0]])

        document = plan(load_scenario(scenario_file), tmp_path, executor, progress=kill_a_busy_worker)
    assert killed, "a worker was killed while it held a point"
    assert comparable(document) == comparable(reference)


def _stored(folder: Path) -> int:
    try:
        with sqlite3.connect(folder / STORE_FILE) as db:
            return int(db.execute("SELECT COUNT(*) FROM points").fetchone()[0])
    except sqlite3.OperationalError:  # not created yet
        return 0


def test_a_killed_plan_resumes_without_recomputing(scenario_file, reference, tmp_path):
    """`latsim plan` killed (SIGKILL) mid-way keeps its finished points; the rerun simulates only the others."""
    command = [sys.executable, "-m", "simulator", "plan", str(scenario_file), "--out", str(tmp_path), "--jobs", "1", "--quiet"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while _stored(tmp_path) < 5 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    process.kill()
    process.wait()
    stored = _stored(tmp_path)
    assert 5 <= stored < reference["search"]["points_simulated"], "killed mid-way"
    resumed = plan(load_scenario(scenario_file), tmp_path)
    assert resumed["search"]["points_simulated"] == reference["search"]["points_simulated"] - stored
    assert comparable(resumed) == comparable(reference)


def _die_once(marker: str) -> int:
    """A task whose first attempt kills its worker process (the marker file remembers the attempt)."""
    path = Path(marker)
    if not path.exists():
        path.write_text("died once", encoding="utf-8")
        os._exit(9)
    return 42


def test_a_pool_worker_that_dies_has_its_task_rerun(tmp_path):
    with ProcessPoolTaskExecutor(2) as executor:
        results = dict(executor.map_unordered(_die_once, [str(tmp_path / "marker")] * 3))
    assert results == {0: 42, 1: 42, 2: 42}
