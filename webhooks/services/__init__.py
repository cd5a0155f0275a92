"""Writes for the webhooks app, one module per topic: endpoints, events, delivery."""
