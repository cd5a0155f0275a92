"""Read the in-process Prometheus registry (tests run without multiprocess mode)."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

TOKEN = "metrics-token-0123456789abcdef"


def sample(name: str, **labels) -> float:
    """Return a sample's current value, 0 when it was never recorded."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
def metrics_token(settings):
    settings.METRICS_TOKEN = TOKEN
    return TOKEN
