"""Capacity planning: the cheapest configuration that meets a scenario's SLOs at its target load (``latsim plan``).

``plan(scenario, out)`` searches the scenario's ``plan:`` block (``simulator.scenario.plan``) and
writes a results folder; the modules, bottom to top: ``load`` (scaling the load), ``space``
(configurations and their cost), ``verdict`` (the SLO rule), ``theory`` (capacity, bounds,
estimates), ``store`` (finished points on disk), ``points`` (points on an executor, in waves),
``search`` (the phases of the search) and ``api``.
"""
