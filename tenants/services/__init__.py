"""Writes for the tenants app, one module per topic; import from the topic module."""
