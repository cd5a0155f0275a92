"""Automation: staff API tokens and the admin API (`/api/v1/admin/`) built on the tenants services."""
