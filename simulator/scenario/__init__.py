"""Scenario files: the pydantic schema, loading and clear errors."""
