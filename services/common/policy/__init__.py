"""The subsidy policy engine: facts in, explained entitlements out; no I/O but the policy file."""
