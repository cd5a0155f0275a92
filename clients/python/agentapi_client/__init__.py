"""Python client of agentapi-admin's service API: the bootstrap document, kept current, flags evaluated locally.

    from agentapi_client import ControlPlane
    plane = ControlPlane("https://admin.example.com", "aak_…").start()
    plane.is_enabled("beta", subject="user-7")
    plane.get_string("theme", "#fff", subject="user-7", context={"platform": "ios"})
    plane.evaluate("user-7", {"platform": "ios"})               # every flag, locally
    plane.evaluate("user-7", {"platform": "ios"}, remote=True)  # POST /api/v1/evaluate

The OpenFeature provider is `agentapi_client.openfeature.AgentApiProvider` (extra `openfeature`).
"""

from agentapi_client.client import NOT_READY, READY, REVOKED, STALE, SUSPENDED, ControlPlane, ControlPlaneError
from agentapi_client.evaluation import Evaluation, evaluate, evaluate_entry, rollout_admits, rollout_bucket

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
    "evaluate_entry",
    "rollout_admits",
    "rollout_bucket",
]
