"""Profiling: time real torch kernels (a zoo of model families in variants, or a user's model)
into versioned profile bundles that service-time models read.

Only the torch-free bundle side is imported here, so that planning from shipped profiles works
without torch. The timing side needs the ``profile`` extra:

    from simulator.profiling.api import profile_module, profile_zoo
"""

from simulator.profiling.bundle import ProfileBundle, load_bundle, write_bundle
from simulator.profiling.errors import ProfileBundleError, ProfilingError
from simulator.profiling.table import latency_summary, markdown_table

__all__ = [
    "ProfileBundle",
    "ProfileBundleError",
    "ProfilingError",
    "latency_summary",
    "load_bundle",
    "markdown_table",
    "write_bundle",
]
