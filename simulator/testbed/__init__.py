"""The testbed: a real serving process under real load, measured, to check latsim's predictions.

- :mod:`~simulator.testbed.server`: an aiohttp server in front of a queue (FIFO, strict priority,
  EDF; optional Triton-style dynamic batching) and worker threads running a zoo model or a user
  kernel; it records every request's timestamps.
- :mod:`~simulator.testbed.load`: an open-loop load generator (Poisson, MMPP, trace), a separate
  process that times each request from its scheduled send and checks its own lateness.
- :mod:`~simulator.testbed.run`: ``run_level``, ``measure_capacity``, ``run_fractions``: start,
  load, stop and join the records into ``requests.parquet``.

Needs torch (the server only) and aiohttp.
"""
