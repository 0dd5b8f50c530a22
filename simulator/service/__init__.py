"""Service-time models: how long one inference call (of a given batch size) takes, in ms.

Importing the package registers the built-in models with ``simulator.registry.SERVICE_MODELS``.
"""

from simulator.service import distributions as _distributions  # noqa: F401  (registers the models)
from simulator.service import fitted as _fitted  # noqa: F401  (registers "fitted")
from simulator.service import profile_backed as _profile_backed  # noqa: F401  (registers "profile")
