"""Settings of the service-time models: how long one inference call (of a given batch size) takes, in ms.

Every field that takes a service model (a node's ``service``, a class's, network delays, copies,
loads, cache hits, pipeline transfers) takes any of these, by ``distribution``. Every built-in
model takes ``scale`` and ``shift_ms`` (a call's time is scale × the model's time + shift_ms),
and the sample-based ones (``empirical``, ``profile``, ``fitted``) take a ``process``: how the
order of the measured times is kept. Times lie in [1e-6, 1e9] ms.
"""

from __future__ import annotations

import functools
import math
from typing import Annotated, Any, Literal, Union

from pydantic import (
    Discriminator,
    Field,
    PositiveInt,
    Tag,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from simulator.distributions import (
    Distribution,
    HyperExponential,
    LognormalHMM,
    PhaseType,
    ScipyFrozen,
)
from simulator.registry import SERVICE_MODELS, PolicyConfig
from simulator.scenario.bounds import MAX_VARIATION_SIGMA
from simulator.settings import Settings

ServiceConfig = SERVICE_MODELS.field()

MIN_TIME_MS = 1e-6  # a nanosecond: shorter is no service time (and subnormal numbers are refused)
MAX_TIME_MS = 1e9  # eleven days
TimeMs = Annotated[float, Field(ge=MIN_TIME_MS, le=MAX_TIME_MS, description="milliseconds, 1e-6 to 1e9")]
MAX_COMPONENTS = 100  # mixture components and phases
MAX_BLOCK_LENGTH = 100_000_000


def check_mean_ms(mean_ms: float, what: str) -> None:
    """A model's mean time must lie in [MIN_TIME_MS, MAX_TIME_MS]: a ValueError saying so otherwise."""
    if not (math.isfinite(mean_ms) and MIN_TIME_MS <= mean_ms <= MAX_TIME_MS):
        raise ValueError(f"{what} has mean {mean_ms:g} ms; service times must have a mean in [{MIN_TIME_MS:g}, {MAX_TIME_MS:g}] ms")


class BatchScaling(Settings):
    """Affine batch cost: a batch of b takes (1 + per_extra_item·(b−1)) times a single call.

    A fixed per-call overhead plus a per-item cost; 0 means a batch is as fast as one request,
    1 means batching saves nothing. Profile-backed models use measured batch times instead.
    """

    per_extra_item: float = Field(ge=0, le=1e6, description="cost of each extra item, as a fraction of a single call")


class ServiceSettings(PolicyConfig):
    """What every built-in service model takes: a call's time is ``scale`` × the model's time + ``shift_ms``.

    ``shift_ms`` is per-call work outside the modelled time (dequeue, locks, sending the reply);
    ``scale`` a faster or slower machine. A batch pays the shift once.
    """

    scale: float = Field(1.0, ge=1e-6, le=1e6, description="multiplies every call's time (before the shift)")
    shift_ms: float = Field(0.0, ge=0, le=MAX_TIME_MS, description="added to every call's time, in ms (0, or 1e-6 to 1e9)")

    @field_validator("shift_ms")
    @classmethod
    def _no_subnormal_shift(cls, shift_ms: float) -> float:
        if 0 < shift_ms < MIN_TIME_MS:
            raise ValueError(f"shift_ms must be 0 or at least {MIN_TIME_MS:g} ms, got {shift_ms!r}")
        return shift_ms


# --- how sample-based models keep the order of measured times ----------------------------------


class IidProcess(Settings):
    """Every call draws an independent measured time (the order of the measurements is lost)."""

    kind: Literal["iid"]


class ReplayProcess(Settings):
    """The measured times in their order, from the first, over and over (a trace replay)."""

    kind: Literal["replay"]


class MovingBlockProcess(Settings):
    """Moving-block bootstrap: runs of ``block_length`` consecutive measured times, each from a random start."""

    kind: Literal["moving_block"]
    block_length: Annotated[int, Field(ge=1, le=MAX_BLOCK_LENGTH)] | Literal["auto"] = Field(
        "auto", description="calls per block (capped at the record's length), or auto: Politis–White"
    )


class StationaryProcess(Settings):
    """Stationary bootstrap: runs of geometric length (mean ``mean_block_length``), wrapping around the record."""

    kind: Literal["stationary"]
    mean_block_length: Annotated[float, Field(ge=1, le=MAX_BLOCK_LENGTH)] | Literal["auto"] = Field(
        "auto", description="mean calls per block (capped at the record's length), or auto: Politis–White"
    )


class HmmProcess(Settings):
    """A hidden Markov chain of slow and fast stretches, lognormal times in each state.

    Its draws divided by its mean multiply the model's mean time at the batch size in use. A
    ``fitted`` model takes the chain ``latsim fit`` estimated; others need ``transition``,
    ``mu_log`` (log-ms) and ``sigma_log``.
    """

    kind: Literal["hmm"]
    transition: list[list[float]] | None = Field(None, max_length=MAX_COMPONENTS, description="state transition matrix")
    mu_log: list[Annotated[float, Field(ge=-15, le=21)]] | None = Field(
        None, max_length=MAX_COMPONENTS, description="mean log time (log ms) per state: -15 to 21 (0.3 ns to 15 days)"
    )
    sigma_log: list[Annotated[float, Field(gt=0, le=MAX_VARIATION_SIGMA)]] | None = Field(
        None, max_length=MAX_COMPONENTS,
        description=f"log-time standard deviation per state, up to {MAX_VARIATION_SIGMA:g} (beyond, the mean rests on rare draws)",
    )

    @model_validator(mode="after")
    def _a_valid_chain(self) -> HmmProcess:
        given = [value is not None for value in (self.transition, self.mu_log, self.sigma_log)]
        if any(given) and not all(given):
            raise ValueError("give all of transition, mu_log and sigma_log, or none (a fitted model's own chain)")
        if all(given):
            self.chain()
        return self

    def chain(self) -> LognormalHMM:
        """The chain these settings give (a ValueError if they give an invalid one or none)."""
        if self.transition is None:
            raise ValueError("this hmm process gives no chain (transition, mu_log, sigma_log)")
        return LognormalHMM(self.transition, self.mu_log, self.sigma_log)


_PROCESSES: dict[str, type[Settings]] = {
    "iid": IidProcess,
    "replay": ReplayProcess,
    "moving_block": MovingBlockProcess,
    "stationary": StationaryProcess,
    "hmm": HmmProcess,
}


def _process_kind(value: Any) -> str | None:
    """The process a raw or validated value names (None: it names none, and validation says which exist)."""
    kind = value.get("kind") if isinstance(value, dict) else getattr(value, "kind", None)
    return kind if kind in _PROCESSES else None


ProcessSettings = Annotated[
    Union[tuple(Annotated[cls, Tag(kind)] for kind, cls in _PROCESSES.items())],  # noqa: UP007  (built from the table)
    Discriminator(
        _process_kind,
        custom_error_type="process_kind",
        custom_error_message=f"kind must be one of {', '.join(_PROCESSES)}",
    ),
]


class SampleBackedSettings(ServiceSettings):
    """A model that draws measured times: ``process`` says whether their order is kept, and how."""

    process: ProcessSettings = Field(
        default_factory=lambda: IidProcess(kind="iid"),
        description="iid (default), replay, moving_block, stationary or hmm; a name or {kind: ..., ...}",
    )

    @field_validator("process", mode="before")
    @classmethod
    def _a_name_is_a_kind(cls, value: Any) -> Any:
        return {"kind": value} if isinstance(value, str) else value

    def requires_chain(self, what: str) -> None:
        """Models that fit no chain themselves need an hmm process to give one."""
        if isinstance(self.process, HmmProcess) and self.process.transition is None:
            raise ValueError(
                f"process hmm of {what} model needs transition, mu_log and sigma_log "
                "(or use distribution: fitted, whose file holds the chain `latsim fit` estimated)"
            )


# --- the models ---------------------------------------------------------------------------------


@SERVICE_MODELS.register_config
class DeterministicService(ServiceSettings):
    """Every call takes exactly ``value_ms`` (M/D/c-style systems)."""

    distribution: Literal["deterministic"]
    value_ms: TimeMs
    batch_scaling: BatchScaling | None = None


class _LawSettings(ServiceSettings):
    """A model drawn from one law of :mod:`simulator.distributions`, checked when the settings are."""

    batch_scaling: BatchScaling | None = None

    def law(self) -> Distribution:
        """The distribution these settings give (a ValueError naming the problem if none)."""
        raise NotImplementedError

    @model_validator(mode="after")
    def _usable_law(self) -> _LawSettings:
        law = self.law()
        if not law.support_lower_ms >= 0:
            raise ValueError(
                f"{self.distribution} can draw negative service times (support starts at {law.support_lower_ms}); "
                "use a non-negative distribution or set loc"
            )
        check_mean_ms(law.mean(), self.distribution)
        return self


@SERVICE_MODELS.register_config
class ScipyService(_LawSettings):
    """Any continuous distribution of scipy.stats by name, parameters in ms (scale, loc, shapes)."""

    distribution: Literal["scipy"]
    name: str = Field(description="a continuous distribution of scipy.stats, e.g. expon, lognorm, gamma")
    params: dict[str, float] = Field(default_factory=dict, max_length=20, description="its parameters, times in ms")

    @field_validator("name")
    @classmethod
    def _known_distribution(cls, name: str) -> str:
        import scipy.stats

        if not isinstance(getattr(scipy.stats, name, None), scipy.stats.rv_continuous):
            raise ValueError(
                f"{name!r} is not a continuous distribution of scipy.stats "
                "(e.g. expon, lognorm, gamma, weibull_min, pareto, uniform, truncnorm)"
            )
        return name

    def law(self) -> ScipyFrozen:
        try:
            return _scipy_law(self.name, tuple(self.params.items()))
        except (TypeError, ValueError) as error:
            raise ValueError(f"params {self.params} do not fit scipy.stats.{self.name}: {error}") from None


@functools.lru_cache(maxsize=256)
def _scipy_law(name: str, params: tuple[tuple[str, float], ...]) -> ScipyFrozen:
    """One law per settings (freezing and checking a scipy distribution takes ~1 ms; a run builds its models several times)."""
    law = ScipyFrozen(name, dict(params))
    law.mean()
    return law


@SERVICE_MODELS.register_config
class HyperExponentialService(_LawSettings):
    """With probability ``weights[i]`` (normalized) an exponential time of mean ``means_ms[i]``."""

    distribution: Literal["hyperexponential"]
    weights: list[Annotated[float, Field(gt=0, le=1e9)]] = Field(min_length=1, max_length=MAX_COMPONENTS)
    means_ms: list[TimeMs] = Field(min_length=1, max_length=MAX_COMPONENTS, description="mean of each exponential phase")

    def law(self) -> HyperExponential:
        if len(self.weights) != len(self.means_ms):
            raise ValueError(f"weights and means_ms need one entry per phase, got {len(self.weights)} and {len(self.means_ms)}")
        total = sum(self.weights)
        return HyperExponential([w / total for w in self.weights], [1.0 / m for m in self.means_ms])


@SERVICE_MODELS.register_config
class PhaseTypeService(_LawSettings):
    """Time to absorption of a Markov chain: initial probabilities ``alpha``, sub-generator ``T`` (rates per ms)."""

    distribution: Literal["phase_type"]
    alpha: list[Annotated[float, Field(ge=0, le=1)]] = Field(min_length=1, max_length=MAX_COMPONENTS, description="sums to 1")
    T: list[list[Annotated[float, Field(ge=-1e9, le=1e9)]]] = Field(
        min_length=1, max_length=MAX_COMPONENTS, description="rates per ms: diagonal < 0, off-diagonal ≥ 0, rows sum ≤ 0"
    )

    def law(self) -> PhaseType:
        return PhaseType(self.alpha, self.T)


@SERVICE_MODELS.register_config
class MixtureService(ServiceSettings):
    """With probability ``weights[i]`` (normalized) a call takes a time of ``components[i]`` (any service model)."""

    distribution: Literal["mixture"]
    weights: list[Annotated[float, Field(gt=0, le=1e9)]] = Field(min_length=1, max_length=MAX_COMPONENTS)
    components: Annotated[
        list[ServiceConfig],
        WithJsonSchema({"type": "array", "items": {"type": "object", "description": "any service model, by distribution"}}),
    ] = Field(min_length=1, max_length=MAX_COMPONENTS, description="service models, mixtures too")  # no recursive schema

    @model_validator(mode="after")
    def _one_weight_each(self) -> MixtureService:
        if len(self.weights) != len(self.components):
            raise ValueError(f"weights and components need one entry each, got {len(self.weights)} and {len(self.components)}")
        return self


@SERVICE_MODELS.register_config
class EmpiricalService(SampleBackedSettings):
    """Measured service times (ms) from a CSV/parquet column, or an expression of columns, with ``process`` order."""

    distribution: Literal["empirical"]
    file: str = Field(description="CSV or parquet file, relative to the scenario file")
    column: str | None = Field(None, description="column of service times in ms (default: the only one)")
    expression: str | None = Field(
        None, max_length=1000,
        description="instead of column: + - * / of column names and numbers, e.g. latency_ms - service_ms",
    )
    batch_scaling: BatchScaling | None = None

    @field_validator("expression")
    @classmethod
    def _a_usable_expression(cls, expression: str | None) -> str | None:
        if expression is not None:
            from simulator.formats.samples import expression_columns  # pandas: loaded only where an expression is given

            expression_columns(expression)
        return expression

    @model_validator(mode="after")
    def _column_or_expression(self) -> EmpiricalService:
        if self.column is not None and self.expression is not None:
            raise ValueError("give column or expression, not both")
        self.requires_chain("an empirical")
        return self


COLD_STAGES = frozenset({"load", "first_call"})
Stage = Literal["end_to_end", "compute", "overhead", "h2d", "d2h", "load", "first_call"]


@SERVICE_MODELS.register_config
class ProfileService(SampleBackedSettings):
    """Empirical service times of a real kernel, from a profile bundle, at the batch size in use."""

    distribution: Literal["profile"]
    bundle: str = Field(description="profile bundle directory (or its metadata.json), relative to the scenario file")
    family: str = Field(description="model family in the bundle, e.g. mlp, cnn, transformer")
    variant: str = Field("fp32", description="variant: fp32, int8, bf16, fp16, pruned, distilled")
    device: Literal["cpu", "cuda"] = "cpu"
    threads: PositiveInt | None = Field(
        None, le=4096, description="intra-op threads the samples were taken with (default: the only or the serving count)"
    )
    concurrency: PositiveInt = Field(1, le=4096, description="workers sharing the device while the samples were taken")
    stage: Stage = Field(
        "end_to_end",
        description="what was timed; load (model from disk) and first_call are the cold-start measurements",
    )
    mode: Literal["sweep", "sequence", "isolated", "cold"] | None = Field(
        None,
        description="which measurement to sample at concurrency 1: sweep (all batch sizes, default), "
        "sequence (one long run at batch 1), isolated (calls after idle gaps, batch 1) or cold "
        "(fresh process; implied by stage load or first_call)",
    )
    block_length: PositiveInt = Field(
        1, le=MAX_BLOCK_LENGTH, description="1: resample calls independently; L>1: replay runs of L consecutive measured calls "
        "(the same as process: {kind: moving_block, block_length: L})"
    )

    @model_validator(mode="after")
    def _mode_fits_concurrency(self) -> ProfileService:
        cold_stage = self.stage in COLD_STAGES
        if self.mode is not None and (self.mode == "cold") != cold_stage:
            raise ValueError(
                f"stage {self.stage!r} is not measured in mode {self.mode!r}: stages {sorted(COLD_STAGES)} "
                "come from mode cold (leave mode out), the others from sweep, sequence or isolated"
            )
        if self.mode is not None and self.concurrency > 1:
            raise ValueError(
                f"mode {self.mode!r} was measured with one worker; with concurrency {self.concurrency} "
                "the concurrent samples are used (leave mode out)"
            )
        if self.block_length > 1 and not isinstance(self.process, IidProcess):
            raise ValueError("give block_length or process, not both (block_length: L is process: {kind: moving_block, block_length: L})")
        self.requires_chain("a profile")
        return self

    def order(self) -> ProcessSettings:
        """The process these settings ask for (``block_length`` > 1 is a moving-block bootstrap)."""
        if self.block_length > 1:
            return MovingBlockProcess(kind="moving_block", block_length=self.block_length)
        return self.process


from simulator.scenario import fitted as _fitted  # noqa: F401  (registers "fitted")
