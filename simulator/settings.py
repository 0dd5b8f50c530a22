"""The base of every validated settings object: unknown keys are errors, and a valid value never changes."""

from pydantic import BaseModel, ConfigDict


class Settings(BaseModel):
    """Strict (``extra="forbid"``) and frozen pydantic model: scenario sections and policy settings."""

    model_config = ConfigDict(extra="forbid", frozen=True)
