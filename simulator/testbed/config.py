"""What a testbed server serves and how: the model, workers, queue discipline, batching and
request classes. It travels to the server process as JSON; a latsim scenario translates into it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    ValidationError,
    model_validator,
)

from simulator.testbed.errors import TestbedError, invalid

Discipline = Literal["fifo", "priority", "edf"]
ServerKind = Literal["aiohttp", "litserve"]
INFER_PATH = "/infer"  # where every testbed server takes requests (and the load generator posts them by default)
SERVER_KINDS: tuple[ServerKind, ...] = ("aiohttp", "litserve")


MAX_BATCH_SIZE = 1024  # the server prepares a payload of every size up to it before it listens
MAX_WORKERS = 256


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class RequestClassSpec(_Strict):
    """A request class: its name, share of arrivals, priority (0 first) and relative deadline."""

    name: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.-]+$")
    share: PositiveFloat = Field(1.0, le=1e9)
    priority: NonNegativeInt = Field(0, le=1_000_000)
    deadline_ms: PositiveFloat | None = Field(None, le=1e9, description="arrival to reply; None: no deadline (last under EDF)")


class ModelSpec(_Strict):
    """A zoo model (see :mod:`simulator.profiling.zoo`), trained briefly when the server starts."""

    family: Literal["mlp", "cnn", "transformer"] = "cnn"
    variant: Literal["fp32", "int8", "bf16", "pruned", "distilled"] = "fp32"
    size: Literal["standard", "tiny"] = "standard"
    seq_len: PositiveInt = Field(64, le=4096)
    seed: NonNegativeInt = Field(0, le=2**32 - 1)


class BatchingConfig(_Strict):
    """Triton-style dynamic batching: a free worker takes ``max_batch_size`` waiting requests, or the
    largest preferred size that is waiting, or whatever waits once the oldest waiting request has
    waited ``max_queue_delay_ms``."""

    max_batch_size: PositiveInt = Field(1, le=MAX_BATCH_SIZE)
    max_queue_delay_ms: NonNegativeFloat = Field(0.0, le=1e12)
    preferred_batch_sizes: tuple[PositiveInt, ...] = Field((), max_length=MAX_BATCH_SIZE)

    @property
    def dynamic(self) -> bool:
        """Calls may hold more than one request."""
        return self.max_batch_size > 1

    @model_validator(mode="after")
    def _preferred_fit(self) -> BatchingConfig:
        too_large = [size for size in self.preferred_batch_sizes if size > self.max_batch_size]
        if too_large:
            raise ValueError(f"preferred_batch_sizes {too_large} exceed max_batch_size {self.max_batch_size}")
        return self


class TestbedConfig(_Strict):
    """One serving process: ``workers`` threads running the model behind one queue."""

    __test__ = False  # not a pytest test class, despite the name

    server: ServerKind = Field(
        "aiohttp",
        description="aiohttp: latsim's own server (worker threads behind one event loop); "
        "litserve: LitServe (an HTTP front and one process per worker)",
    )
    model: ModelSpec = ModelSpec()
    device: Literal["cpu", "cuda"] = Field(
        "cpu", description="where the model and its inputs are put; cuda: one stream per worker, each call timed to its stream's end"
    )
    kernel: str | None = Field(
        None,
        description="'package.module:factory' of a user kernel instead of the zoo model: "
        "factory(max_batch_size) returns a callable that runs one call on a batch of the given size",
    )
    workers: PositiveInt = Field(1, le=MAX_WORKERS)
    intra_op_threads: PositiveInt = Field(1, le=1024, description="torch.set_num_threads of the server process")
    discipline: Discipline = "fifo"
    batching: BatchingConfig = BatchingConfig()
    classes: tuple[RequestClassSpec, ...] = Field((RequestClassSpec(name="default"),), min_length=1, max_length=1000)
    warmup_calls: NonNegativeInt = Field(20, le=10_000, description="kernel calls per batch size before the server listens")

    @model_validator(mode="after")
    def _unique_class_names(self) -> TestbedConfig:
        names = [c.name for c in self.classes]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"class names must be unique; repeated: {duplicates}")
        return self

    @property
    def model_label(self) -> str:
        """A short name of what is served, for progress lines and summaries."""
        return self.kernel or f"{self.model.family}/{self.model.variant}"

    @classmethod
    def parse(cls, data: dict | str, origin: str = "testbed config") -> TestbedConfig:
        """Validate a dict or a JSON string; an invalid one raises :class:`TestbedError` naming every problem."""
        try:
            return cls.model_validate_json(data) if isinstance(data, str) else cls.model_validate(data)
        except ValidationError as error:
            raise invalid(error, origin) from None

    @classmethod
    def read(cls, path: Path) -> TestbedConfig:
        """A config from a JSON file."""
        return cls.parse(Path(path).read_text(encoding="utf-8"), origin=str(path))


def refuse_unservable(config: TestbedConfig, origin: str) -> None:
    """A clear error for what the config's server kind cannot do, naming the scenario's field (LitServe
    serves one first-come-first-served queue and batches without preferred sizes)."""
    if config.server != "litserve":
        return
    problems = []
    if config.discipline != "fifo":
        problems.append(
            f"nodes[0].discipline.policy is {config.discipline!r}, but LitServe's workers take requests first come "
            "first served from one queue (no priority classes, no EDF, no preemption): use fifo, or --server aiohttp"
        )
    if config.batching.preferred_batch_sizes:
        problems.append(
            "nodes[0].batching.preferred_batch_sizes is set, but LitServe fills a batch up to max_batch_size within "
            "its batch_timeout, without preferred sizes: leave them out, or --server aiohttp"
        )
    if problems:
        raise TestbedError(f"{origin}: the litserve server cannot serve this: " + "; ".join(problems))
