"""Models that draw measured (or fitted) times, i.i.d. or as a process that keeps their order.

Per batch size a model has a *source* — measured samples, or a fitted law — and a factor that
scales it to that size. Its ``process`` settings say how draws follow one another: ``iid``
(independent draws of the source), ``replay``, ``moving_block``, ``stationary`` (bootstraps of
the measured samples in order, :mod:`simulator.distributions.process`) or ``hmm`` (a Markov chain
of slow and fast stretches whose draws, divided by its mean, multiply the source's mean). An
ordered model keeps one sample path per generator and batch size: successive ``draw_block``
calls with the generator continue it, however long its blocks are.
"""

from __future__ import annotations

from abc import abstractmethod
from pathlib import Path

import numpy as np

from simulator.distributions import (
    Distribution,
    LognormalHMM,
    MovingBlockBootstrap,
    SamplePath,
    ServiceProcess,
    StationaryBootstrap,
)
from simulator.errors import ScenarioError
from simulator.scenario.service import (
    HmmProcess,
    MovingBlockProcess,
    ProcessSettings,
    ReplayProcess,
    SampleBackedSettings,
    StationaryProcess,
)
from simulator.service.base import ServiceTimeModel

Source = np.ndarray | Distribution  # measured samples (ms) or a fitted law


def source_moment(source: Source, k: int) -> float:
    """E[X^k] of measured samples (their average) or of a law, in ms^k."""
    return float(np.mean(source**k)) if isinstance(source, np.ndarray) else float(source.moment(k))


def source_mean_ms(source: Source) -> float:
    """E[X] of measured samples or of a law, in ms."""
    return source_moment(source, 1)


def _independent(source: Source, rng: np.random.Generator, size: int) -> np.ndarray:
    """``size`` independent draws: resampled measurements, or a law's draws (never below 0)."""
    if isinstance(source, np.ndarray):
        return source[rng.integers(0, source.size, size)]
    return np.maximum(source.sample(rng, size), 0.0)


class SampleBacked(ServiceTimeModel):
    """A model that draws from a source per batch size (:meth:`source`), in the order its ``process`` asks for."""

    def __init__(self, config: SampleBackedSettings, base_dir: Path, process: ProcessSettings | None = None) -> None:
        super().__init__(config, base_dir)
        self.process = config.process if process is None else process
        given = isinstance(self.process, HmmProcess) and self.process.transition is not None
        self._given_chain = self.process.chain() if given else None
        self._paths: dict[tuple[int, int], tuple[np.random.Generator, SamplePath]] = {}

    @abstractmethod
    def source(self, batch_size: int) -> tuple[Source, float]:
        """What a call of ``batch_size`` draws from, and the factor that scales those draws to it."""

    def chain(self) -> LognormalHMM:
        """The Markov chain of an ``hmm`` process (models with a chain of their own override this)."""
        assert self._given_chain is not None  # the settings refuse an hmm process without one
        return self._given_chain

    @property
    def ordered(self) -> bool:
        return self.process.kind != "iid"

    def _ordered_process(self, source: Source) -> ServiceProcess:
        process = self.process
        if isinstance(process, HmmProcess):
            return self.chain()
        if not isinstance(source, np.ndarray):
            raise ScenarioError(f"process {process.kind} replays measured samples, and this model draws from a fitted law")
        if isinstance(process, ReplayProcess):
            return MovingBlockBootstrap(source, source.size)
        if isinstance(process, MovingBlockProcess):
            length = None if process.block_length == "auto" else min(process.block_length, source.size)
            return MovingBlockBootstrap(source, length)
        assert isinstance(process, StationaryProcess)
        mean_length = None if process.mean_block_length == "auto" else min(process.mean_block_length, source.size)
        return StationaryBootstrap(source, mean_length)

    def _factor(self, source: Source, factor: float) -> float:
        """The factor a process's draws take: an hmm's are normalized to the source's mean."""
        if isinstance(self.process, HmmProcess):
            return factor * source_mean_ms(source) / self.chain().mean_ms()
        return factor

    def draw_block(self, rng: np.random.Generator, size: int, batch_size: int = 1) -> np.ndarray:
        source, factor = self.source(batch_size)
        if not self.ordered:
            return _independent(source, rng, size) * factor
        key = (id(rng), batch_size)
        if key not in self._paths:  # the generator is kept with its path, so its id stays its own
            self._paths[key] = (rng, self._ordered_process(source).path(rng))
        return self._paths[key][1].take(size) * self._factor(source, factor)

    def _moment(self, k: int, batch_size: int) -> float:
        """E[S^k]: the source's, scaled; an hmm's draws have the source's mean and the chain's shape."""
        source, factor = self.source(batch_size)
        if isinstance(self.process, HmmProcess):
            chain = self.chain()
            return (source_mean_ms(source) * factor) ** k * chain.moment(k) / chain.moment(1) ** k
        return source_moment(source, k) * factor**k

    def mean_ms(self, batch_size: int = 1) -> float:
        return self._moment(1, batch_size)

    def second_moment_ms2(self, batch_size: int = 1) -> float:
        return self._moment(2, batch_size)

    def third_moment_ms3(self, batch_size: int = 1) -> float | None:
        return self._moment(3, batch_size)
