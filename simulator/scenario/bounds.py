"""Physically meaningful ranges for the numbers of a scenario, in one place.

Every bound is far beyond what a real serving system needs, and close enough that no input can
make latsim allocate or compute without end (a 1e-300/s arrival rate, a 1e12-request warm-up).
"""

from typing import Annotated

from pydantic import Field

MAX_REQUESTS = 1_000_000_000  # per replication, warm-up included
MAX_REPLICATIONS = 10_000
MAX_NODES = 10_000  # node instances in a scenario: specs × replicas × partitions
MAX_CATALOG = 10_000_000  # distinct request keys (key popularity arrays are O(catalog))

RatePerS = Annotated[float, Field(ge=1e-6, le=1e9, description="requests per second, 1e-6 to 1e9")]
RatePerSOrZero = Annotated[float, Field(ge=0, le=1e9, description="requests per second, 0 to 1e9")]
DurationS = Annotated[float, Field(ge=1e-6, le=1e9, description="seconds, 1e-6 to 1e9")]
InstantS = Annotated[float, Field(ge=0, le=1e9, description="seconds from the start of the run, 0 to 1e9")]
TimeMs = Annotated[float, Field(gt=0, le=1e12, description="milliseconds, above 0, up to 1e12")]
TimeMsOrZero = Annotated[float, Field(ge=0, le=1e12, description="milliseconds, 0 to 1e12")]
Weight = Annotated[float, Field(gt=0, le=1e9, description="a positive weight up to 1e9")]
Count = Annotated[int, Field(ge=1, le=MAX_REQUESTS)]
CountOrZero = Annotated[int, Field(ge=0, le=MAX_REQUESTS)]
# A mean-1 lognormal multiplier exp(σZ − σ²/2) has median exp(−σ²/2): at σ = 3 most calls take 1 % of the mean and
# the mean rests on about one call in e^σ² ≈ 8,000; beyond that the mean of any run is luck (at σ = 10, 0.00 ms)
MAX_VARIATION_SIGMA = 3.0
MAX_NAME_CHARS = 200  # a name is shown in tables, progress lines, plot titles and reports
MAX_DESCRIPTION_CHARS = 100_000
Name = Annotated[str, Field(min_length=1, max_length=MAX_NAME_CHARS, description=f"a name of 1 to {MAX_NAME_CHARS} characters")]
