"""Technology contract registry: registry, subsidy and audit services."""
