"""Helpers shared by the test suites: databases, parties, principals."""
