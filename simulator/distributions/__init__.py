"""Service-time distributions scipy lacks (phase-type, hyperexponential, mixtures, shifted/scaled copies),
and service processes whose order matters (block bootstraps, a lognormal hidden Markov model).

Every distribution follows :class:`Distribution` (times in ms) and round-trips through JSON-able
dicts; :func:`from_dict` rebuilds any of them from its ``family`` key. Every process follows
:class:`ServiceProcess`: ``path(rng)`` gives a sequence whose successive draws continue it.
"""

from simulator.distributions.base import Distribution, from_dict
from simulator.distributions.combinators import Mixture, Scaled, Shifted
from simulator.distributions.phase_type import HyperExponential, PhaseType
from simulator.distributions.process import (
    BlockLength,
    LognormalHMM,
    MovingBlockBootstrap,
    SamplePath,
    ServiceProcess,
    StationaryBootstrap,
    optimal_block_length,
)
from simulator.distributions.scipy_frozen import ScipyFrozen

__all__ = [
    "BlockLength",
    "Distribution",
    "HyperExponential",
    "LognormalHMM",
    "Mixture",
    "MovingBlockBootstrap",
    "PhaseType",
    "SamplePath",
    "Scaled",
    "ScipyFrozen",
    "ServiceProcess",
    "Shifted",
    "StationaryBootstrap",
    "from_dict",
    "optimal_block_length",
]
