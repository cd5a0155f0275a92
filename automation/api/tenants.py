"""Tenants: list, get, create, update, activate, suspend, resume, offboard; their flag overrides and API keys."""

from __future__ import annotations

from django.db.models import Q
from ninja import Header, Query, Router

from agentapi_admin.openapi import problems
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
from automation.api.schemas import OffboardIn, SuspendIn, TenantCreate, TenantOut, TenantPage, TenantUpdate
from automation.api.serializers import tenant_data
from tenants.models import Plan, Tenant
from tenants.services import tenants as services

router = Router(tags=["tenants"])

READ = staff("tenants:read", "tenants.view_tenant")
ADD = staff("tenants:write", "tenants.add_tenant")
CHANGE = staff("tenants:write", "tenants.change_tenant")
ERRORS = problems(400, 401, 403, 404, 422, 429, 503)
WRITE_ERRORS = problems(400, 401, 403, 404, 409, 412, 422, 428, 429, 503)
IF_MATCH = Header(None, alias="If-Match", description="The ETag you read; required (428 without, 412 if stale).")
IDEMPOTENCY_KEY = Header(None, alias="Idempotency-Key", description="Replays the first answer for 24 h.")


def tenant_rows():
    return Tenant.objects.select_related("plan")


def locked_tenant(slug: str) -> Tenant:
    return get_or_404(tenant_rows().select_for_update(of=("self",)), field="slug", value=slug, what="tenant")


def plan_named(code: str, *, field: str = "plan") -> Plan:
    plan = Plan.objects.filter(code=code).first()
    if plan is None:
        raise Problem(
            422, "unknown_plan", f"No plan with code {code!r}; list them at /api/v1/admin/plans.", field=field
        )
    return plan


@router.get("/tenants", auth=READ, response={200: TenantPage, **ERRORS}, summary="List tenants (cursor pages)")
def tenants_list(
    request,
    status: str | None = Query(None, pattern="^(trial|active|suspended|deleted)$"),
    plan: str | None = Query(None, max_length=40, description="A plan code."),
    q: str | None = Query(None, max_length=200, description="Part of the slug or name."),
    cursor: str | None = Query(None, max_length=500),
    limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT),
):
    rows = tenant_rows()
    if status:
        rows = rows.filter(status=status)
    if plan:
        rows = rows.filter(plan__code=plan)
    if q:
        rows = rows.filter(Q(slug__icontains=q) | Q(name__icontains=q))
    return page(request, rows, key="slug", cursor=cursor, limit=limit, serialize=tenant_data)


@router.get("/tenants/{slug}", auth=READ, response={200: TenantOut, 304: None, **ERRORS}, summary="Get a tenant")
def tenant_get(request, slug: str):
    return resource(request, tenant_data(get_or_404(tenant_rows(), field="slug", value=slug, what="tenant")))


@router.post(
    "/tenants", auth=ADD, response={201: TenantOut, **WRITE_ERRORS}, summary="Create a tenant (Idempotency-Key)"
)
def tenant_create(request, payload: TenantCreate, idempotency_key: str | None = IDEMPOTENCY_KEY):
    def create():
        if Tenant.objects.filter(slug=payload.slug).exists():
            raise Problem(409, "conflict", f"A tenant with slug {payload.slug!r} already exists.", field="slug")
        plan = plan_named(payload.plan)
        with acting(request) as actor:
            tenant = services.tenant_create(
                slug=payload.slug,
                name=payload.name,
                plan=plan,
                settings=payload.settings,
                labels=payload.labels,
                upstream_url=payload.upstream_url,
                status=payload.status,
                actor=actor,
                ip=client_address(request),
            )
        data = tenant_data(tenant_rows().get(pk=tenant.pk))
        return resource(request, data, status=201, headers={"Location": f"{request.path}/{tenant.slug}"})

    return idempotent(request, create)


@router.patch("/tenants/{slug}", auth=CHANGE, response={200: TenantOut, **WRITE_ERRORS}, summary="Update a tenant")
def tenant_update(request, slug: str, payload: TenantUpdate, if_match: str | None = IF_MATCH):
    fields = payload.dict(exclude_unset=True)
    if not fields:
        raise Problem(
            422, "empty_update", "Send at least one of name, plan, settings, labels, upstream_url.", field="body"
        )
    for name in ("name", "plan"):
        if name in fields and fields[name] is None:
            raise Problem(422, "invalid_request", f"{name} cannot be null.", field=name)
    if "plan" in fields:
        fields["plan"] = plan_named(fields["plan"])
    if fields.get("settings", ...) is None:
        fields["settings"] = {}
    if fields.get("labels", ...) is None:
        fields["labels"] = []
    if fields.get("upstream_url", ...) is None:
        fields["upstream_url"] = ""
    with acting(request) as actor:
        tenant = locked_tenant(slug)
        require_if_match(request, tenant_data(tenant))
        services.tenant_update(tenant=tenant, actor=actor, ip=client_address(request), **fields)
    return resource(request, tenant_data(tenant_rows().get(pk=tenant.pk)))


@router.post(
    "/tenants/{slug}/suspend", auth=CHANGE, response={200: TenantOut, **WRITE_ERRORS}, summary="Suspend a tenant"
)
def tenant_suspend(request, slug: str, payload: SuspendIn, if_match: str | None = IF_MATCH):
    with acting(request) as actor:
        tenant = locked_tenant(slug)
        require_if_match(request, tenant_data(tenant))
        if tenant.status == Tenant.Status.DELETED:
            raise Problem(409, "tenant_deleted", "A deleted tenant cannot be suspended.", field="slug")
        services.tenant_suspend(tenant=tenant, reason=payload.reason, actor=actor, ip=client_address(request))
    return resource(request, tenant_data(tenant_rows().get(pk=tenant.pk)))


@router.post(
    "/tenants/{slug}/resume", auth=CHANGE, response={200: TenantOut, **WRITE_ERRORS}, summary="Resume a tenant"
)
def tenant_resume(request, slug: str, if_match: str | None = IF_MATCH):
    with acting(request) as actor:
        tenant = locked_tenant(slug)
        require_if_match(request, tenant_data(tenant))
        if tenant.status == Tenant.Status.DELETED:
            raise Problem(409, "tenant_deleted", "A deleted tenant cannot be resumed.", field="slug")
        services.tenant_resume(tenant=tenant, actor=actor, ip=client_address(request))
    return resource(request, tenant_data(tenant_rows().get(pk=tenant.pk)))


@router.post(
    "/tenants/{slug}/activate",
    auth=CHANGE,
    response={200: TenantOut, **WRITE_ERRORS},
    summary="Activate a trial tenant (trial → active)",
)
def tenant_activate(request, slug: str, if_match: str | None = IF_MATCH):
    with acting(request) as actor:
        tenant = locked_tenant(slug)
        require_if_match(request, tenant_data(tenant))
        if tenant.status == Tenant.Status.DELETED:
            raise Problem(409, "tenant_deleted", "A deleted tenant cannot be activated.", field="slug")
        services.tenant_activate(tenant=tenant, actor=actor, ip=client_address(request))
    return resource(request, tenant_data(tenant_rows().get(pk=tenant.pk)))


@router.post(
    "/tenants/{slug}/offboard",
    auth=CHANGE,
    response={200: TenantOut, **WRITE_ERRORS},
    summary="Offboard a tenant for good: API access refused, upstream credentials erased (reason required)",
)
def tenant_offboard(request, slug: str, payload: OffboardIn, if_match: str | None = IF_MATCH):
    with acting(request) as actor:
        tenant = locked_tenant(slug)
        require_if_match(request, tenant_data(tenant))
        if tenant.status == Tenant.Status.DELETED:
            raise Problem(409, "tenant_deleted", "The tenant is already offboarded.", field="slug")
        services.tenant_offboard(tenant=tenant, reason=payload.reason, actor=actor, ip=client_address(request))
    return resource(request, tenant_data(tenant_rows().get(pk=tenant.pk)))
