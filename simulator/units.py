"""Units in one place: the model's clock runs in milliseconds, users speak seconds and per-second rates."""

MS_PER_S = 1000.0
NS_PER_MS = 1_000_000
