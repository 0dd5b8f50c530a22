"""Settings of the service-time models: how long one inference call (of a given batch size) takes, in ms.

Every field that takes a service model (a node's ``service``, a class's, network delays, copies,
loads, cache hits, pipeline transfers) takes any of these, by ``distribution``.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, PositiveFloat, PositiveInt, field_validator, model_validator

from simulator.registry import SERVICE_MODELS, PolicyConfig
from simulator.settings import Settings

ServiceConfig = SERVICE_MODELS.field()


class BatchScaling(Settings):
    """Affine batch cost: a batch of b takes (1 + per_extra_item·(b−1)) times a single call.

    A fixed per-call overhead plus a per-item cost; 0 means a batch is as fast as one request,
    1 means batching saves nothing. Profile-backed models use measured batch times instead.
    """

    per_extra_item: float = Field(ge=0, description="cost of each extra item, as a fraction of a single call")


@SERVICE_MODELS.register_config
class DeterministicService(PolicyConfig):
    """Every call takes exactly ``value_ms`` (M/D/c-style systems)."""

    distribution: Literal["deterministic"]
    value_ms: PositiveFloat
    batch_scaling: BatchScaling | None = None


@SERVICE_MODELS.register_config
class ScipyService(PolicyConfig):
    """Any continuous distribution of scipy.stats by name, parameters in ms (scale, loc, shapes)."""

    distribution: Literal["scipy"]
    name: str = Field(description="a continuous distribution of scipy.stats, e.g. expon, lognorm, gamma")
    params: dict[str, float] = Field(default_factory=dict, description="its parameters, times in ms")
    batch_scaling: BatchScaling | None = None

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

    @model_validator(mode="after")
    def _usable_as_service_time(self) -> ScipyService:
        import scipy.stats

        try:
            frozen = getattr(scipy.stats, self.name)(**self.params)
            lower, _ = frozen.support()
            mean = float(frozen.mean())
        except (TypeError, ValueError) as error:
            raise ValueError(f"params {self.params} do not fit scipy.stats.{self.name}: {error}") from None
        if not lower >= 0:
            raise ValueError(
                f"scipy.stats.{self.name}{self.params} can draw negative service times "
                f"(support starts at {lower}); use a non-negative distribution or set loc"
            )
        if not math.isfinite(mean):
            raise ValueError(f"scipy.stats.{self.name}{self.params} has no finite mean")
        return self


@SERVICE_MODELS.register_config
class EmpiricalService(PolicyConfig):
    """Resamples measured service times (ms) from a CSV/parquet column, with replacement."""

    distribution: Literal["empirical"]
    file: str = Field(description="CSV or parquet file, relative to the scenario file")
    column: str | None = Field(None, description="column of service times in ms (default: the only one)")
    batch_scaling: BatchScaling | None = None


COLD_STAGES = frozenset({"load", "first_call"})


@SERVICE_MODELS.register_config
class ProfileService(PolicyConfig):
    """Empirical service times of a real kernel, from a profile bundle, at the batch size in use."""

    distribution: Literal["profile"]
    bundle: str = Field(description="profile bundle directory (or its metadata.json), relative to the scenario file")
    family: str = Field(description="model family in the bundle, e.g. mlp, cnn, transformer")
    variant: str = Field("fp32", description="variant: fp32, int8, bf16, fp16, pruned, distilled")
    device: Literal["cpu", "cuda"] = "cpu"
    threads: PositiveInt | None = Field(
        None, description="intra-op threads the samples were taken with (default: the only or the serving count)"
    )
    concurrency: PositiveInt = Field(1, description="workers sharing the device while the samples were taken")
    stage: Literal["end_to_end", "compute", "overhead", "h2d", "d2h", "load", "first_call"] = Field(
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
        1, description="1: resample calls independently; L>1: replay runs of L consecutive measured calls"
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
        return self
