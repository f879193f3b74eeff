"""Billing: tiers, products, enterprise overrides, credits and entitlements."""
