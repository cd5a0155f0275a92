"""The service API (`/api/v1/`): what AgentAPI replicas call with a tenant API key."""
