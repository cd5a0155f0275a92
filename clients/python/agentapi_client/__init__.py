"""Python client of agentapi-admin's service API: the bootstrap document, kept current, flags evaluated locally.

    from agentapi_client import ControlPlane
    plane = ControlPlane("https://admin.example.com", "aak_…").start()
    plane.is_enabled("beta", subject="user-7")

The OpenFeature provider is `agentapi_client.openfeature.AgentApiProvider` (extra `openfeature`).
"""

from agentapi_client.client import NOT_READY, READY, REVOKED, STALE, SUSPENDED, ControlPlane, ControlPlaneError
from agentapi_client.evaluation import Evaluation, evaluate, rollout_admits, rollout_bucket

__all__ = [
    "NOT_READY",
    "READY",
    "REVOKED",
    "STALE",
    "SUSPENDED",
    "ControlPlane",
    "ControlPlaneError",
    "Evaluation",
    "evaluate",
    "rollout_admits",
    "rollout_bucket",
]
