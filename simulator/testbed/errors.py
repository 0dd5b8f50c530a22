"""Errors of the testbed, reported to a user without a traceback."""

from pydantic import ValidationError

from simulator.errors import LatsimError


class TestbedError(LatsimError):
    """A testbed run that cannot be set up or carried out; the message says what and why."""

    __test__ = False  # not a pytest test class, despite the name


def invalid(error: ValidationError, origin: str) -> TestbedError:
    """A :class:`TestbedError` naming every problem of a failed validation, field by field."""
    problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(top)'}: {e['msg']}" for e in error.errors())
    return TestbedError(f"{origin}: {problems}")
