"""The registry: contract registrations and evidence kept as a tamper-evident event log."""
