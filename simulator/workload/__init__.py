"""The offered load: arrival processes and request classes."""
