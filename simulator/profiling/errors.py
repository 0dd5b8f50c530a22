"""Errors of the profiling side, reported to a user without a traceback."""

from simulator.errors import LatsimError


class ProfilingError(LatsimError):
    """A profiling request that cannot be carried out (bad model spec, no GPU, unknown family, ...)."""
