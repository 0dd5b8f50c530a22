"""Human-facing output: terminal tables now; plots and capacity reports later."""
