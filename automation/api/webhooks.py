"""Webhook endpoints: list, get, create (the secret shown once), update, rotate the secret, delete;
an endpoint's deliveries and their redelivery. Every write goes through webhooks.services (audited)."""

from __future__ import annotations

from django.http import HttpResponse
from ninja import Query, Router

from automation.api.auth import staff
from automation.api.http import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    Problem,
    acting,
    client_address,
    get_or_404,
    page,
    require_if_match,
    resource,
)
from automation.api.idempotency import idempotent
from automation.api.schemas import (
    WebhookDeliveryOut,
    WebhookDeliveryPage,
    WebhookEndpointCreate,
    WebhookEndpointCreated,
    WebhookEndpointOut,
    WebhookEndpointPage,
    WebhookEndpointUpdate,
    WebhookSecretRotated,
)
from automation.api.serializers import webhook_delivery_data, webhook_endpoint_data
from automation.api.tenants import ERRORS, IDEMPOTENCY_KEY, IF_MATCH, WRITE_ERRORS, tenant_rows
from webhooks.models import REDELIVER_PERMISSION, WebhookDelivery, WebhookEndpoint
from webhooks.services import delivery as delivery_services
from webhooks.services import endpoints as services

router = Router(tags=["webhooks"])

READ = staff("webhooks:read", "webhooks.view_webhookendpoint")
READ_DELIVERIES = staff("webhooks:read", "webhooks.view_webhookendpoint", "webhooks.view_webhookdelivery")
ADD = staff("webhooks:write", "webhooks.add_webhookendpoint")
CHANGE = staff("webhooks:write", "webhooks.change_webhookendpoint")
DELETE = staff("webhooks:write", "webhooks.delete_webhookendpoint")
REDELIVER = staff("webhooks:write", REDELIVER_PERMISSION)


def endpoint_rows():
    return WebhookEndpoint.objects.select_related("tenant")


def endpoint_or_404(endpoint_id: int, *, lock: bool = False) -> WebhookEndpoint:
    rows = endpoint_rows().select_for_update(of=("self",)) if lock else endpoint_rows()
    return get_or_404(rows, field="pk", value=endpoint_id, what="webhook endpoint", param="endpoint_id")


def _answer(request, endpoint: WebhookEndpoint, **kwargs) -> HttpResponse:
    return resource(request, webhook_endpoint_data(endpoint_rows().get(pk=endpoint.pk)), **kwargs)


@router.get(
    "/webhook-endpoints",
    auth=READ,
    response={200: WebhookEndpointPage, **ERRORS},
    summary="List webhook endpoints (cursor pages); secrets are never shown",
)
def webhook_endpoints_list(
    request,
    tenant: str | None = Query(None, max_length=50, description="Only this tenant's endpoints (its slug)."),
    platform: bool | None = Query(None, description="true: only platform-wide endpoints; false: only tenants'."),
    enabled: bool | None = Query(None),
    cursor: str | None = Query(None, max_length=500),
    limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT),
):
    rows = endpoint_rows()
    if tenant is not None:
        if platform:
            raise Problem(
                400, "invalid_request", "Ask for one tenant's endpoints or platform=true, not both.", field="platform"
            )
        rows = rows.filter(tenant=get_or_404(tenant_rows(), field="slug", value=tenant, what="tenant", param="tenant"))
    if platform is not None:
        rows = rows.filter(tenant__isnull=platform)
    if enabled is not None:
        rows = rows.filter(enabled=enabled)
    return page(request, rows, key="id", cursor=cursor, limit=limit, serialize=webhook_endpoint_data, kind=int)


@router.get(
    "/webhook-endpoints/{endpoint_id}",
    auth=READ,
    response={200: WebhookEndpointOut, 304: None, **ERRORS},
    summary="Get a webhook endpoint (without its secret)",
)
def webhook_endpoint_get(request, endpoint_id: int):
    return resource(request, webhook_endpoint_data(endpoint_or_404(endpoint_id)))


@router.post(
    "/webhook-endpoints",
    auth=ADD,
    response={201: WebhookEndpointCreated, **WRITE_ERRORS},
    summary="Create a webhook endpoint; its signing secret is in this answer only (Idempotency-Key)",
)
def webhook_endpoint_create(request, payload: WebhookEndpointCreate, idempotency_key: str | None = IDEMPOTENCY_KEY):
    def create():
        tenant = None
        if payload.tenant is not None:
            tenant = get_or_404(tenant_rows(), field="slug", value=payload.tenant, what="tenant", param="tenant")
            if tenant.status == tenant.Status.DELETED:
                raise Problem(
                    409, "tenant_deleted", "An offboarded tenant cannot get webhook endpoints.", field="tenant"
                )
        with acting(request) as actor:
            endpoint, secret = services.endpoint_create(
                tenant=tenant,
                url=payload.url,
                event_types=payload.event_types,
                description=payload.description,
                enabled=payload.enabled,
                actor=actor,
                ip=client_address(request),
            )
        data = webhook_endpoint_data(endpoint_rows().get(pk=endpoint.pk))
        return resource(
            request,
            {**data, "secret": secret},
            status=201,
            headers={"Location": f"{request.path}/{endpoint.pk}", "Cache-Control": "no-store"},
            # The endpoint's ETag, as GET answers it: the secret is no part of the resource.
            version=data,
        )

    # A replay never holds the secret: it is not kept anywhere, Redis included.
    return idempotent(request, create, redact=("secret",))


@router.patch(
    "/webhook-endpoints/{endpoint_id}",
    auth=CHANGE,
    response={200: WebhookEndpointOut, **WRITE_ERRORS},
    summary="Update a webhook endpoint's URL, event types, description or enabled switch",
)
def webhook_endpoint_update(request, endpoint_id: int, payload: WebhookEndpointUpdate, if_match: str | None = IF_MATCH):
    fields = payload.dict(exclude_unset=True)
    if not fields:
        raise Problem(422, "empty_update", "Send at least one of url, event_types, description, enabled.", field="body")
    for name in ("url", "event_types", "enabled"):
        if name in fields and fields[name] is None:
            raise Problem(422, "invalid_request", f"{name} cannot be null.", field=name)
    if fields.get("description", ...) is None:
        fields["description"] = ""
    with acting(request) as actor:
        endpoint = endpoint_or_404(endpoint_id, lock=True)
        require_if_match(request, webhook_endpoint_data(endpoint))
        services.endpoint_update(endpoint=endpoint, actor=actor, ip=client_address(request), **fields)
    return _answer(request, endpoint)


@router.post(
    "/webhook-endpoints/{endpoint_id}/rotate-secret",
    auth=CHANGE,
    response={200: WebhookSecretRotated, **WRITE_ERRORS},
    summary="Rotate the signing secret: the new one is in this answer only; the previous ones overlap",
)
def webhook_endpoint_rotate_secret(
    request,
    endpoint_id: int,
    overlap_seconds: int | None = Query(
        None, ge=0, le=30 * 24 * 3600, description="How long the previous secrets keep signing (default: setting)."
    ),
    if_match: str | None = IF_MATCH,
):
    with acting(request) as actor:
        endpoint = endpoint_or_404(endpoint_id, lock=True)
        require_if_match(request, webhook_endpoint_data(endpoint))
        secret = services.endpoint_rotate_secret(
            endpoint=endpoint, overlap=overlap_seconds, actor=actor, ip=client_address(request)
        )
    expiring = endpoint.secrets.filter(expires_at__isnull=False).order_by("-expires_at").first()
    data = webhook_endpoint_data(endpoint_rows().get(pk=endpoint.pk))
    body = {**data, "secret": secret, "previous_secrets_expire_at": expiring.expires_at if expiring else None}
    return resource(request, body, headers={"Cache-Control": "no-store"}, version=data)


@router.delete(
    "/webhook-endpoints/{endpoint_id}",
    auth=DELETE,
    response={204: None, **WRITE_ERRORS},
    summary="Delete a webhook endpoint with its secrets and delivery log",
)
def webhook_endpoint_delete(request, endpoint_id: int, if_match: str | None = IF_MATCH):
    with acting(request) as actor:
        endpoint = endpoint_or_404(endpoint_id, lock=True)
        require_if_match(request, webhook_endpoint_data(endpoint))
        services.endpoint_delete(endpoint=endpoint, actor=actor, ip=client_address(request))
    return HttpResponse(status=204)


def _deliveries(endpoint: WebhookEndpoint):
    return WebhookDelivery.objects.select_related("event", "endpoint").filter(endpoint=endpoint)


@router.get(
    "/webhook-endpoints/{endpoint_id}/deliveries",
    auth=READ_DELIVERIES,
    response={200: WebhookDeliveryPage, **ERRORS},
    summary="List an endpoint's deliveries, newest first (cursor pages)",
)
def webhook_deliveries_list(
    request,
    endpoint_id: int,
    status: str | None = Query(None, pattern="^(pending|delivered|failed)$"),
    cursor: str | None = Query(None, max_length=500),
    limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT),
):
    rows = _deliveries(endpoint_or_404(endpoint_id))
    if status:
        rows = rows.filter(status=status)
    return page(request, rows, key="-id", cursor=cursor, limit=limit, serialize=webhook_delivery_data, kind=int)


@router.post(
    "/webhook-endpoints/{endpoint_id}/deliveries/{delivery_id}/redeliver",
    auth=REDELIVER,
    response={201: WebhookDeliveryOut, **WRITE_ERRORS},
    summary="Send a delivery's event again: a new delivery queued behind what is pending",
)
def webhook_delivery_redeliver(request, endpoint_id: int, delivery_id: int):
    endpoint = endpoint_or_404(endpoint_id)
    delivery = get_or_404(
        _deliveries(endpoint), field="pk", value=delivery_id, what="delivery of this endpoint", param="delivery_id"
    )
    with acting(request) as actor:
        again = delivery_services.delivery_redeliver(delivery=delivery, actor=actor, ip=client_address(request))
    return resource(request, webhook_delivery_data(_deliveries(endpoint).get(pk=again.pk)), status=201)
