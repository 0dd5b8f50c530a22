"""Run metrics: streaming per-request statistics, confidence intervals, summaries."""
