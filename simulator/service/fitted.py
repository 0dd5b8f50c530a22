"""Service times from a fitted-model file (``latsim fit``): one cell's chosen law, or its measured samples.

The cell is found by family, variant, device, threads, concurrency and stage (what the scenario
leaves out must be unambiguous in the file). A call of b requests is a batch of b × ``batch_size``
items: the model draws the cell of the largest measured size at or below it, scaled so its mean
lies on the file's batch-size curve (monotone, and only inside the measured sizes). The measured
samples (``choice: empirical``, a fit that recommends them, or a bootstrap ``process``) are read
from the source the file names, whose content must still hash to what was fitted; a parametric
law needs no source, but a source that is there must match.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from simulator.distributions import LognormalHMM
from simulator.errors import ProfileBundleError, ScenarioError
from simulator.registry import SERVICE_MODELS
from simulator.scenario.fitted import FittedService
from simulator.service.distributions import read_service_times
from simulator.service.profile_backed import cached_bundle
from simulator.service.sample_backed import SampleBacked, Source, source_mean_ms

if TYPE_CHECKING:
    from simulator.formats.fitted import FittedCell, FittedModels

WHAT = "service.fitted"


@functools.lru_cache(maxsize=16)
def _cached_fitted(path: Path, stamp: tuple[int, int]) -> FittedModels:
    from simulator.formats.fitted import read_fitted  # pandas: loaded only where a fitted file is read

    return read_fitted(path)


def load_fitted(path: Path) -> FittedModels:
    """Read a fitted-model file once per content: many nodes of a scenario may name the same file."""
    status = path.stat()
    return _cached_fitted(path.resolve(), (status.st_mtime_ns, status.st_size))


def _pick(cells: list[FittedCell], name: str, wanted: object, context: str, default: object = None) -> list[FittedCell]:
    """The cells whose ``name`` is ``wanted``; when not given, the only value there is (or ``default`` among several)."""
    available = sorted({getattr(cell, name) for cell in cells})
    if wanted is None:
        if len(available) == 1:
            wanted = available[0]
        elif default in available:
            wanted = default
        else:
            raise ScenarioError(f"{WHAT}: {context} has {name}s {available}; choose one with {name}: ...")
    if wanted not in available:
        raise ScenarioError(f"{WHAT}: {context} has no {name} {wanted!r}; it has {available}")
    return [cell for cell in cells if getattr(cell, name) == wanted]


@SERVICE_MODELS.register
class Fitted(SampleBacked):
    """One cell of a fitted-model file: its chosen law (or measured samples), through the batch-size curve."""

    Config = FittedService

    def __init__(self, config: FittedService, base_dir: Path) -> None:
        super().__init__(config, base_dir)
        self.path = base_dir / config.file
        if not self.path.is_file():
            raise ScenarioError(f"{WHAT}: fitted file {self.path} does not exist (make one with `latsim fit`)")
        self.models = load_fitted(self.path)
        self.cells = self._select()
        any_cell = next(iter(self.cells.values()))
        self.label = f"{any_cell.family}/{any_cell.variant} {any_cell.device} threads {any_cell.threads} {any_cell.stage}"
        group = self.models.group(any_cell)
        self.curve = None if group is None or any_cell.concurrency > 1 else group.curve()
        self._chain = None if group is None or group.process is None else group.process.chain()
        self._samples: dict[int, np.ndarray] | None = None
        self._check_source()
        self._sources = {size: self._cell_source(cell) for size, cell in self.cells.items()}

    def _select(self) -> dict[int, FittedCell]:
        """The cells the settings name, by batch size."""
        c = self.config
        context = f"fitted file {self.path}"
        cells = [cell for cell in self.models.cells if cell.family == c.family]
        if not cells:
            families = sorted({cell.family for cell in self.models.cells})
            raise ScenarioError(f"{WHAT}: {context} has no family {c.family!r}; it has {families}")
        context += f" ({c.family})"
        cells = _pick(cells, "variant", c.variant, context)
        cells = _pick(cells, "device", c.device, context)
        cells = _pick(cells, "threads", c.threads, context, self.models.source.serving_threads)
        cells = _pick(cells, "stage", c.stage, context)
        cells = _pick(cells, "concurrency", c.concurrency, context)
        return {cell.batch_size: cell for cell in sorted(cells, key=lambda cell: cell.batch_size)}

    def _source_path(self) -> Path:
        return self.path.parent / self.models.source.path

    def _check_source(self) -> None:
        """A source that is there must hash to what was fitted; one that is not is needed only for samples."""
        source = self.models.source
        where = self._source_path()
        needs_samples = any(self._wants_samples(cell) for cell in self.cells.values())
        if not where.exists():
            if needs_samples:
                raise ScenarioError(
                    f"{WHAT}: {self.label} draws the measured samples of {where}, named by {self.path}, which is not there"
                )
            return
        if source.kind == "profile_bundle":
            try:
                bundle = cached_bundle(where)
            except ProfileBundleError as error:
                raise ScenarioError(f"{WHAT}: {error}") from None
            found = bundle.metadata["samples"]["sha256"]
        else:
            from simulator.formats.fitted import file_sha256
            from simulator.formats.samples import MAX_FILE_BYTES

            found = file_sha256(where, MAX_FILE_BYTES)
        if found != source.sha256:
            raise ScenarioError(
                f"{WHAT}: {self.path} was fitted from {where} with content sha256 {source.sha256[:12]}…, but it now "
                f"holds {found[:12]}…: the measurements changed since; refit (latsim fit {where} --out {self.path})"
            )
        if needs_samples:
            self._samples = self._read_samples(where)

    def _read_samples(self, where: Path) -> dict[int, np.ndarray]:
        source = self.models.source
        if source.kind == "samples":
            times = read_service_times(where, source.column, source.expression, WHAT)
            return {size: times for size in self.cells}
        frame = cached_bundle(where).samples
        from simulator.formats.fitted import cell_samples

        samples = {size: cell_samples(frame, cell) for size, cell in self.cells.items()}
        empty = [size for size, times in samples.items() if times.size == 0]
        if empty:
            raise ScenarioError(f"{WHAT}: {where} has no samples of {self.label} at batch size {empty[0]}, which {self.path} fitted")
        return samples

    def _wants_samples(self, cell: FittedCell) -> bool:
        """Whether the cell draws its measured samples: asked for, recommended by the fit, or replayed by the process."""
        choice = self.config.choice
        from simulator.formats.fitted import EMPIRICAL

        return choice == EMPIRICAL or self.process.kind not in ("iid", "hmm") or (choice == "auto" and cell.chosen == EMPIRICAL)

    def _cell_source(self, cell: FittedCell) -> Source:
        if self._wants_samples(cell):
            assert self._samples is not None  # _check_source read them, or refused
            return self._samples[cell.batch_size]
        law = cell.distribution()
        if law is None:
            raise ScenarioError(
                f"{WHAT}: no parametric law could be fitted to {self.label} at batch size {cell.batch_size} "
                f"({cell.reason}); use choice: empirical"
            )
        return law

    def chain(self) -> LognormalHMM:
        if self._chain is None:
            raise ScenarioError(
                f"{WHAT}: {self.path} holds no hidden Markov chain for {self.label} (no ordered run of it was measured); "
                "use another process"
            )
        return self._chain

    def source(self, batch_size: int) -> tuple[Source, float]:
        items = batch_size * self.config.batch_size
        sizes = list(self.cells)
        if self.curve is None:
            if items not in self.cells:
                raise ScenarioError(f"{WHAT}: {self.label} was fitted at batch sizes {sizes} only; batch size {items} is not one")
            return self._sources[items], 1.0
        try:
            target_ms = float(self.curve.time_ms(items))
        except ValueError as error:
            raise ScenarioError(f"{WHAT}: {self.label}: {error}") from None
        below = max(size for size in sizes if size <= items)
        source = self._sources[below]
        return source, target_ms / source_mean_ms(source)

