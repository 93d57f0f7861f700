"""The subsidy service: projects the registry log into yearly entitlements for finance."""
