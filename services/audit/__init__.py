"""The audit service: verifies the registry's history and recomputes every figure from it."""
