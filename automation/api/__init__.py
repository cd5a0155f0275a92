"""The admin API (`/api/v1/admin/`): staff tokens in, the tenants services out (docs/automation.md)."""
