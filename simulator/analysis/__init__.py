"""Queueing theory applied to scenarios: the analytic answer beside the simulated one (``latsim analyze``)."""

from simulator.analysis.analyze import AnalyticReport, Prediction, RuledOut, analyze

__all__ = ["AnalyticReport", "Prediction", "RuledOut", "analyze"]
