"""What the machine does to a call's time beyond the service model: its speed as a process (a Markov
chain advanced once per call, whose state's factor — times a mean-1 lognormal spread of that state,
if given — multiplies the call's service time, whatever the class), a slowdown by the node's
occupancy when the call starts (another factor), and the worker's overhead outside the kernel (a
mean that depends on the node's occupancy, rising or falling, times a mean-1 lognormal variation).
See ``scenario.nodes.SpeedSpec``, ``OccupancySlowdownSpec`` and ``OverheadSpec``."""

from __future__ import annotations

import numpy as np

from itertools import islice

from simulator.random_streams import draws
from simulator.scenario.nodes import OverheadSpec, SpeedSpec


def stationary_distribution(transition: np.ndarray) -> np.ndarray:
    """A chain's stationary distribution (the left eigenvector for eigenvalue 1)."""
    values, vectors = np.linalg.eig(np.asarray(transition, dtype=float).T)
    stationary = np.abs(np.real(vectors[:, np.argmin(np.abs(values - 1))]))
    return stationary / stationary.sum()


def mean_speed_factor(spec: SpeedSpec) -> float:
    """The long-run mean speed factor, Σ πᵢ factorᵢ: what a node's mean service time is multiplied by."""
    return float(np.dot(stationary_distribution(np.asarray(spec.transition)), spec.factors))


class Speed:
    """``next_factor()`` is the speed factor of the node's next call; the chain starts in its stationary law."""

    def __init__(self, spec: SpeedSpec, rng: np.random.Generator) -> None:
        self.factors = list(spec.factors)
        self.cumulative = np.cumsum(np.asarray(spec.transition, dtype=float), axis=1)
        self.cumulative[:, -1] = 1.0
        self.uniforms = draws(rng.random)
        start = np.cumsum(stationary_distribution(np.asarray(spec.transition)))
        self.state = min(int(np.searchsorted(start, next(self.uniforms), side="right")), len(self.factors) - 1)
        sigmas = spec.variation_sigma
        self.spreads = None if sigmas is None or not any(sigmas) else (list(sigmas), draws(rng.standard_normal))
        self.calls = 0  # calls whose draws were read (one uniform each, after the start's; one normal each with spreads)

    def next_factor(self) -> float:
        factor = self.factors[self.state]
        if self.spreads is not None:
            sigma = self.spreads[0][self.state]
            factor *= float(np.exp(sigma * next(self.spreads[1]) - sigma * sigma / 2))
        self.state = int(np.searchsorted(self.cumulative[self.state], next(self.uniforms), side="right"))
        self.calls += 1
        return factor

    def next_draws(self, calls: int) -> tuple[np.ndarray, np.ndarray | None]:
        """The uniforms (moves of the chain) and normals (spreads; None without) of the next ``calls`` calls, read
        as ``next_factor`` reads them: the two share the generator, so each block is drawn in the same turn."""
        uniforms, normals = [], []
        block = self.uniforms.blocks.block_size
        left = calls
        while left:
            # a piece ends where either iterator would draw a block: within it, at most its first call draws
            piece = min(left, block - (self.calls + 1) % block)
            if self.spreads is not None:
                piece = min(piece, block - self.calls % block)
                normals.extend(islice(self.spreads[1], piece))
            uniforms.extend(islice(self.uniforms, piece))
            self.calls += piece
            left -= piece
        return np.array(uniforms), None if self.spreads is None else np.array(normals)

    def factors_of(self, states: np.ndarray, normals: np.ndarray | None) -> np.ndarray:
        """The factors of calls made in ``states`` with these spread normals (``next_factor``'s arithmetic, per element)."""
        factors = np.asarray(self.factors)[states]
        if normals is None:
            return factors
        sigmas = np.asarray(self.spreads[0])[states]
        return factors * np.exp(sigmas * normals - sigmas * sigmas / 2)


class OccupancyCurve:
    """A value given the requests at the node when a call starts (linear between the points, flat beyond them):
    an occupancy slowdown's factor, an overhead's mean."""

    def __init__(self, occupancy: list[float], values: list[float]) -> None:
        self.occupancy = np.asarray(occupancy, dtype=float)
        self.values = np.asarray(values, dtype=float)

    def __call__(self, occupancy: int) -> float:
        return float(np.interp(occupancy, self.occupancy, self.values))

    def table(self, most: int) -> np.ndarray:
        """The values at occupancies 0, 1, ..., up to ``most`` or the first beyond the last point (flat after it)."""
        return np.interp(np.arange(min(most, int(np.ceil(self.occupancy[-1]))) + 1), self.occupancy, self.values)


class Overhead:
    """A call's overhead in ms given the requests at the node when it starts: the mean's curve times a mean-1 variation."""

    def __init__(self, spec: OverheadSpec, rng: np.random.Generator) -> None:
        self.mean_ms = OccupancyCurve(spec.occupancy, spec.mean_ms)
        sigma = spec.variation_sigma
        self.multipliers = draws(lambda size: np.exp(sigma * rng.standard_normal(size) - sigma * sigma / 2)) if sigma else None

    def __call__(self, occupancy: int) -> float:
        mean_ms = self.mean_ms(occupancy)
        return mean_ms * next(self.multipliers) if self.multipliers is not None else mean_ms


class CallTime:
    """A call's time on this machine: its service time × the speed factor × the occupancy slowdown + the overhead."""

    def __init__(self, speed: Speed | None, overhead: Overhead | None, slowdown: OccupancyCurve | None = None) -> None:
        self.speed, self.overhead, self.slowdown = speed, overhead, slowdown

    def __call__(self, service_ms: float, occupancy: int) -> float:
        if self.speed is not None:
            service_ms *= self.speed.next_factor()
        if self.slowdown is not None:
            service_ms *= self.slowdown(occupancy)
        if self.overhead is not None:
            service_ms += self.overhead(occupancy)
        return service_ms
