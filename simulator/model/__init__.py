"""The SimPy model of a serving system. Importing the package registers its built-in policies."""

from simulator.model import (  # noqa: F401  (each module registers its policies by name)
    admission,
    batching,
    cache,
    disciplines,
    disruptions,
    failure_handling,
    partitioning,
    router,
)
