"""The SimPy model of the serving system: engine, nodes, queue disciplines, admission, routing."""
