"""A realistic, deterministic demo history of the registry, and its loader (``tcr demo``)."""
