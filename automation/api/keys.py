"""Tenant API keys: list, get, issue (the secret shown once), revoke."""

from __future__ import annotations

from ninja import Query, Router

from automation.api.auth import staff
from automation.api.catalog import ENVIRONMENTS
from automation.api.environments import environment_or_404
from automation.api.http import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    acting,
    client_address,
    get_or_404,
    page,
    require_if_match,
    resource,
)
from automation.api.idempotency import idempotent
from automation.api.schemas import ApiKeyIn, ApiKeyIssued, ApiKeyOut, ApiKeyPage
from automation.api.serializers import apikey_data, apikey_version
from automation.api.tenants import ERRORS, IDEMPOTENCY_KEY, IF_MATCH, WRITE_ERRORS, tenant_rows
from tenants.models import ApiKey
from tenants.selectors import apikeys_with_last_use
from tenants.services import apikeys as services

router = Router(tags=["api-keys"])

READ = staff("tenants:read", "tenants.view_apikey")
ISSUE = staff("keys:write", "tenants.add_apikey")
REVOKE = staff("keys:write", "tenants.change_apikey")


def _keys(tenant):
    return ApiKey.objects.select_related("tenant").filter(tenant=tenant)


@router.get("/tenants/{slug}/api-keys", auth=READ, response={200: ApiKeyPage, **ERRORS}, summary="List a tenant's keys")
def apikeys_list(
    request,
    slug: str,
    environment: str | None = ENVIRONMENTS,
    cursor: str | None = Query(None, max_length=500),
    limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT),
):
    tenant = get_or_404(tenant_rows(), field="slug", value=slug, what="tenant")
    rows = _keys(tenant)
    if environment is not None:
        rows = rows.filter(environment=environment_or_404(tenant, environment))
    return page(
        request,
        rows,
        key="prefix",
        cursor=cursor,
        limit=limit,
        serialize=apikey_data,
        prepare=apikeys_with_last_use,
    )


@router.get(
    "/tenants/{slug}/api-keys/{prefix}",
    auth=READ,
    response={200: ApiKeyOut, 304: None, **ERRORS},
    summary="Get one key's metadata",
)
def apikey_get(request, slug: str, prefix: str):
    tenant = get_or_404(tenant_rows(), field="slug", value=slug, what="tenant")
    api_key = get_or_404(_keys(tenant), field="prefix", value=prefix, what="API key")
    # last_used_at as the portal shows it: a use recorded in Redis counts before the flush reaches the database.
    return resource(request, apikey_data(apikeys_with_last_use([api_key])[0]), version=apikey_version(api_key))


@router.post(
    "/tenants/{slug}/api-keys",
    auth=ISSUE,
    response={201: ApiKeyIssued, **WRITE_ERRORS},
    summary="Issue a key; its secret is in this answer only (Idempotency-Key replays it without the secret)",
)
def apikey_issue(request, slug: str, payload: ApiKeyIn, idempotency_key: str | None = IDEMPOTENCY_KEY):
    def create():
        tenant = get_or_404(tenant_rows(), field="slug", value=slug, what="tenant")
        with acting(request) as actor:
            api_key, secret = services.apikey_issue(
                tenant=tenant,
                name=payload.name,
                scopes=payload.scopes,
                expires_at=payload.expires_at,
                environment=payload.environment,
                actor=actor,
                ip=client_address(request),
            )
        api_key = _keys(tenant).get(pk=api_key.pk)
        response = resource(
            request,
            {**apikey_data(api_key), "secret": secret},
            status=201,
            headers={"Location": f"{request.path}/{api_key.prefix}", "Cache-Control": "no-store"},
            # The key's ETag, as GET answers it: the secret is no part of the resource.
            version=apikey_version(api_key),
        )
        return response

    # A replay never holds the secret: it is not kept anywhere, Redis included.
    return idempotent(request, create, redact=("secret",))


@router.post(
    "/tenants/{slug}/api-keys/{prefix}/revoke",
    auth=REVOKE,
    response={200: ApiKeyOut, **WRITE_ERRORS},
    summary="Revoke a key: it answers 401 from the next request",
)
def apikey_revoke(request, slug: str, prefix: str, if_match: str | None = IF_MATCH):
    tenant = get_or_404(tenant_rows(), field="slug", value=slug, what="tenant")
    with acting(request) as actor:
        rows = _keys(tenant).select_for_update(of=("self",))
        api_key = get_or_404(rows, field="prefix", value=prefix, what="API key")
        require_if_match(request, apikey_version(api_key))
        services.apikey_revoke(api_key=api_key, actor=actor, ip=client_address(request))
    api_key = _keys(tenant).get(pk=api_key.pk)
    return resource(request, apikey_data(api_key), version=apikey_version(api_key))
