"""Errors a user can act on: each names what is wrong and what is allowed."""


class LatsimError(Exception):
    """Base class of every error latsim reports to a user without a traceback."""


class ScenarioError(LatsimError):
    """A scenario file (or dict) that cannot be used: message names file, field and what is allowed."""


class UnstableSystemError(LatsimError):
    """Offered load reaches or exceeds capacity, so queues would grow without bound."""


class ProfileBundleError(LatsimError):
    """A profile bundle that cannot be used: the message names the file and what is wrong with it."""


class CalibrationError(LatsimError):
    """Request logs or a calibration file that cannot be used, or logs that cannot identify what is asked of them."""
