"""Errors of the testbed, reported to a user without a traceback."""

from pydantic import ValidationError

from simulator.errors import LatsimError


class TestbedError(LatsimError):
    """A testbed run that cannot be set up or carried out; the message says what and why."""

    __test__ = False  # not a pytest test class, despite the name


MAX_PROBLEMS = 10  # listed of a failed validation; a file with thousands of bad entries gets one line


def invalid(error: ValidationError, origin: str) -> TestbedError:
    """A :class:`TestbedError` naming the problems of a failed validation, field by field (the first ``MAX_PROBLEMS``)."""
    problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(top)'}: {e['msg']}" for e in error.errors()[:MAX_PROBLEMS])
    more = f" (and {error.error_count() - MAX_PROBLEMS} more)" if error.error_count() > MAX_PROBLEMS else ""
    return TestbedError(f"{origin}: {problems}{more}")
