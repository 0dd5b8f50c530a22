"""Running scenarios: plan a run, check it, simulate its replications on an executor, collect the result."""
