"""The offered load: arrival processes and key popularity. Importing the package registers them."""

from simulator.workload import arrivals, keys  # noqa: F401  (each module registers its policies by name)
