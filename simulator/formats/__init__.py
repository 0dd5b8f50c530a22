"""File formats latsim reads and writes, with no simulation code: profile bundles, sample columns, fitted models."""
