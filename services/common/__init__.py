"""Code every service may import: money, identity codes, the log envelope."""
