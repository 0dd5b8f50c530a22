"""The SimPy internals ``simulator.model.simulation`` relies on: if a SimPy release changes them, fail here, loudly."""

from __future__ import annotations

from importlib.metadata import version

import simpy
from simpy.events import NORMAL

from simulator.model.simulation import Due, Environment, cancel


def test_simpy_is_a_supported_version():
    major, minor = (int(part) for part in version("simpy").split(".")[:2])
    assert (major, minor) == (4, 1), "model/simulation.py was checked against SimPy 4.1 only; re-check its internals"


def test_the_internals_due_writes_to_exist():
    env = Environment()
    assert isinstance(env._queue, list) and env._now == 0 and next(env._eid) >= 0
    assert NORMAL == 1  # SimPy's priority of ordinary events (URGENT is 0)


def test_due_fires_like_a_timeout_in_time_and_insertion_order():
    env = Environment()
    fired = []
    env.timeout(5.0).callbacks.append(lambda event: fired.append(("timeout", env.now)))
    Due(env, 5.0, "first", lambda event: fired.append((event.payload, env.now)))
    Due(env, 2.0, "early", lambda event: fired.append((event.payload, env.now)))
    Due(env, 5.0, "second", lambda event: fired.append((event.payload, env.now)))
    env.run()
    assert fired == [("early", 2.0), ("timeout", 5.0), ("first", 5.0), ("second", 5.0)]


def test_a_due_is_a_triggered_event_whose_value_is_its_payload():
    env = Environment()
    event = Due(env, 1.0, {"x": 1}, lambda event: None)
    assert event.triggered and event.ok and event.value == {"x": 1}
    process_saw = []

    def waiter():
        process_saw.append((yield event))

    env.process(waiter())
    env.run()
    assert process_saw == [{"x": 1}]


def test_a_cancelled_due_fires_into_nothing():
    env = Environment()
    fired = []
    event = Due(env, 1.0, None, lambda event: fired.append(env.now))
    cancel(event)
    env.run()
    assert fired == [] and env.now == 1.0


def test_only_the_simulation_module_imports_simpy():
    from pathlib import Path

    package = Path(__file__).resolve().parent.parent / "simulator"
    importers = sorted(
        str(path.relative_to(package)) for path in package.rglob("*.py")
        if any(line.strip().startswith(("import simpy", "from simpy")) for line in path.read_text().splitlines())
    )
    assert importers == ["model/simulation.py"]
    assert simpy.Environment is Environment
