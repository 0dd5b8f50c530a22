"""The fast engine: a compiled (numba) event loop for the scenarios it simulates exactly like the SimPy model.

``eligibility.ineligibility(scenario)`` says what, if anything, rules a scenario out;
``engine.simulate`` runs one replication (imported only when used: it loads numba).
"""

from __future__ import annotations

from importlib.util import find_spec


def compiler_available() -> bool:
    """Whether numba, which the fast engine is compiled with, is installed."""
    return find_spec("numba") is not None
