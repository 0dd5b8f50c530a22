"""Profiling: time real torch kernels (a zoo of model families in variants, or a user's model)
into versioned profile bundles (``simulator.formats.profile_bundle``) that service-time models read.

The timing side needs the ``profile`` extra (torch); the bundle format and the Markdown table
(``simulator.profiling.table``) do not:

    from simulator.profiling.api import profile_module, profile_zoo
"""
