"""Audit action names of the webhooks app's writes."""

ENDPOINT_CREATE = "webhook.endpoint_create"
ENDPOINT_UPDATE = "webhook.endpoint_update"
ENDPOINT_DELETE = "webhook.endpoint_delete"
SECRET_ROTATE = "webhook.secret_rotate"  # noqa: S105 - an action name
DELIVERY_REDELIVER = "webhook.redeliver"
