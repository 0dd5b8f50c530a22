"""Errors of the profiling side, reported to a user without a traceback."""

from simulator.errors import LatsimError


class ProfileBundleError(LatsimError):
    """A profile bundle that cannot be used: the message names the file and what is wrong with it."""


class ProfilingError(LatsimError):
    """A profiling request that cannot be carried out (bad model spec, no GPU, unknown family, ...)."""
