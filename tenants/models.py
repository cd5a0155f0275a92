"""Tenant models (see issue: tenants, plans and feature flags)."""
