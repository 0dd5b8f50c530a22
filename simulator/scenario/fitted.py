"""Settings of the ``fitted`` service model: one cell of a fitted-model file that ``latsim fit`` wrote.

The cell is named like a profile's (family, variant, device, threads, concurrency, stage); what
is left out must be unambiguous in the file. Batch sizes go through the file's batch-size curve.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, PositiveInt, model_validator

from simulator.registry import SERVICE_MODELS
from simulator.scenario.service import SampleBackedSettings, Stage


@SERVICE_MODELS.register_config
class FittedService(SampleBackedSettings):
    """A service-time model fitted by ``latsim fit``: the chosen law (or the measured samples) of one cell."""

    distribution: Literal["fitted"]
    file: str = Field(description="fitted-model YAML file (latsim fit --out), relative to the scenario file")
    family: str = Field(description="model family, e.g. cnn")
    variant: str | None = Field(None, description="variant, e.g. int8 (default: the family's only one in the file)")
    device: Literal["cpu", "cuda"] | None = Field(None, description="default: the only device in the file")
    threads: PositiveInt | None = Field(None, le=4096, description="default: the only thread count, else the serving count")
    concurrency: PositiveInt = Field(1, le=4096, description="workers sharing the device when the samples were taken")
    stage: Stage = "end_to_end"
    batch_size: PositiveInt = Field(
        1, le=1_000_000, description="items per request: a call of b requests is a batch of b × batch_size items"
    )
    choice: Literal["auto", "fit", "empirical"] = Field(
        "auto",
        description="auto: the fit's choice (the measured samples where no parametric law fits the tail); "
        "fit: the best parametric law even so; empirical: the measured samples (needs the profile bundle)",
    )

    @model_validator(mode="after")
    def _fit_choice_keeps_no_order_of_samples(self) -> FittedService:
        if self.choice == "fit" and self.process.kind not in ("iid", "hmm"):
            raise ValueError(
                f"process {self.process.kind} replays measured samples, so it cannot go with choice: fit "
                "(use choice: auto or empirical, or process iid or hmm)"
            )
        return self
