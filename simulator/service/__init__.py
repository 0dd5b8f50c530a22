"""Service-time models: how long one inference call (of a given batch size) takes, in ms."""

from simulator.service.base import SERVICE_MODELS, ServiceTimeModel
from simulator.service import distributions as _distributions  # noqa: F401  (registers the models)
from simulator.service import profile_backed as _profile_backed  # noqa: F401  (registers "profile")

__all__ = ["SERVICE_MODELS", "ServiceTimeModel"]
