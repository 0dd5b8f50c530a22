"""Service-time distributions scipy lacks (phase-type, hyperexponential, mixtures, shifted/scaled copies).

Every class follows :class:`Distribution` (times in ms) and round-trips through JSON-able dicts;
:func:`from_dict` rebuilds any of them from its ``family`` key.
"""

from simulator.distributions.base import Distribution, from_dict
from simulator.distributions.combinators import Mixture, Scaled, Shifted
from simulator.distributions.phase_type import HyperExponential, PhaseType
from simulator.distributions.scipy_frozen import ScipyFrozen

__all__ = ["Distribution", "HyperExponential", "Mixture", "PhaseType", "Scaled", "ScipyFrozen", "Shifted", "from_dict"]
