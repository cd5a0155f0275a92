"""Plans, flags, tenants' flag overrides and their owners' toggles."""

from __future__ import annotations

from django.db.models import CharField, F, Q, Value
from django.db.models.functions import Concat
from django.http import HttpResponse
from ninja import Query, Router

from automation.api.auth import staff
from automation.api.changes import change_requested
from automation.api.environments import environment_or_404
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
    ChangeRequestOut,
    FlagCreate,
    FlagOut,
    FlagPage,
    FlagUpdate,
    OverrideIn,
    OverrideList,
    OverrideOut,
    OwnerToggleOut,
    OwnerTogglePage,
    PlanCreate,
    PlanOut,
    PlanPage,
    PlanUpdate,
)
from automation.api.serializers import flag_data, override_data, owner_toggle_data, plan_data
from automation.api.tenants import ERRORS, IDEMPOTENCY_KEY, IF_MATCH, WRITE_ERRORS, tenant_rows
from tenants.exceptions import ApprovalRequired
from tenants.models import PRODUCTION, Flag, OwnerToggle, Plan, TenantFlag
from tenants.services import flags as flag_services
from tenants.services import plans as plan_services

# By alias: a flag's `schema` member is `schema_` in Python (pydantic keeps `schema` for itself).
router = Router(by_alias=True)

PLANS_READ = staff("tenants:read", "tenants.view_plan")
PLANS_ADD = staff("plans:write", "tenants.add_plan")
PLANS_CHANGE = staff("plans:write", "tenants.change_plan")
FLAGS_READ = staff("tenants:read", "tenants.view_flag")
FLAGS_ADD = staff("flags:write", "tenants.add_flag")
FLAGS_CHANGE = staff("flags:write", "tenants.change_flag")
# As the tenants admin's "Reset the owners' feature toggles" action: changing the tenant.
TOGGLES_READ = staff("tenants:read", "tenants.view_tenant", "tenants.view_flag")
TOGGLES_RESET = staff("tenants:write", "tenants.change_tenant")


ENVIRONMENT = Query(
    PRODUCTION, min_length=1, max_length=64, description="One of the tenant's environments (404 naming it if not)."
)
ENVIRONMENTS = Query(None, min_length=1, max_length=64, description="Only this environment's; default: every one.")


# A write to a flag that requires approval changes nothing yet: it becomes a change request.
REQUESTED = (
    "A flag that requires approval is not changed: the answer is 202 with the change request the write "
    "became (Location: /api/v1/admin/changes/{id}), applied once another staff user approves it."
)


def _fields(payload, *, allowed: str) -> dict:
    fields = payload.dict(exclude_unset=True)
    if not fields:
        raise Problem(422, "empty_update", f"Send at least one of {allowed}.", field="body")
    return fields


# ------------------------------------------------------------------------------- plans
@router.get("/plans", auth=PLANS_READ, response={200: PlanPage, **ERRORS}, tags=["plans"], summary="List plans")
def plans_list(
    request,
    cursor: str | None = Query(None, max_length=500),
    limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT),
):
    return page(request, Plan.objects.all(), key="code", cursor=cursor, limit=limit, serialize=plan_data)


@router.get(
    "/plans/{code}", auth=PLANS_READ, response={200: PlanOut, 304: None, **ERRORS}, tags=["plans"], summary="Get a plan"
)
def plan_get(request, code: str):
    return resource(request, plan_data(get_or_404(Plan.objects.all(), field="code", value=code, what="plan")))


@router.post(
    "/plans",
    auth=PLANS_ADD,
    response={201: PlanOut, **WRITE_ERRORS},
    tags=["plans"],
    summary="Create a plan (Idempotency-Key)",
)
def plan_create(request, payload: PlanCreate, idempotency_key: str | None = IDEMPOTENCY_KEY):
    def create():
        if Plan.objects.filter(code=payload.code).exists():
            raise Problem(409, "conflict", f"A plan with code {payload.code!r} already exists.", field="code")
        with acting(request) as actor:
            plan = plan_services.plan_create(**payload.dict(), actor=actor, ip=client_address(request))
        return resource(request, plan_data(plan), status=201, headers={"Location": f"{request.path}/{plan.code}"})

    return idempotent(request, create)


@router.patch(
    "/plans/{code}", auth=PLANS_CHANGE, response={200: PlanOut, **WRITE_ERRORS}, tags=["plans"], summary="Update a plan"
)
def plan_update(request, code: str, payload: PlanUpdate, if_match: str | None = IF_MATCH):
    fields = _fields(
        payload, allowed="name, rate_limit_per_minute, burst, daily_quota, max_environments, default_flags"
    )
    for name in ("name", "max_environments"):
        if fields.get(name, ...) is None:
            raise Problem(422, "invalid_request", f"{name} cannot be null.", field=name)
    with acting(request) as actor:
        plan = get_or_404(Plan.objects.select_for_update(), field="code", value=code, what="plan")
        require_if_match(request, plan_data(plan))
        plan = plan_services.plan_update(plan=plan, actor=actor, ip=client_address(request), **fields)
    return resource(request, plan_data(plan))


# ------------------------------------------------------------------------------- flags
@router.get("/flags", auth=FLAGS_READ, response={200: FlagPage, **ERRORS}, tags=["flags"], summary="List flags")
def flags_list(
    request,
    archived: bool | None = Query(None),
    cursor: str | None = Query(None, max_length=500),
    limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT),
):
    rows = Flag.objects.all() if archived is None else Flag.objects.filter(archived=archived)
    return page(request, rows, key="key", cursor=cursor, limit=limit, serialize=flag_data)


@router.get(
    "/flags/{key}", auth=FLAGS_READ, response={200: FlagOut, 304: None, **ERRORS}, tags=["flags"], summary="Get a flag"
)
def flag_get(request, key: str):
    return resource(request, flag_data(get_or_404(Flag.objects.all(), field="key", value=key, what="flag")))


def _definition(fields: dict) -> dict:
    """Return a flag payload's fields as the services take them: `schema` by name, a serve's null variant dropped."""
    if "schema_" in fields:
        fields["schema"] = fields.pop("schema_")
    for rule in fields.get("rules") or ():
        serve = rule.get("serve", {})
        if serve.get("variant", "") is None:
            del serve["variant"]
    return fields


@router.post(
    "/flags",
    auth=FLAGS_ADD,
    response={201: FlagOut, **WRITE_ERRORS},
    tags=["flags"],
    summary="Define a flag (Idempotency-Key)",
    description="Typed flags (kind string, number or json) need a default_value; a rule's segment must exist.",
)
def flag_create(request, payload: FlagCreate, idempotency_key: str | None = IDEMPOTENCY_KEY):
    def create():
        if Flag.objects.filter(key=payload.key).exists():
            raise Problem(409, "conflict", f"A flag with key {payload.key!r} already exists.", field="key")
        # Unset members of a rule's serve stay absent: a serve's "value": null is a value.
        fields = _definition({**payload.dict(), **payload.dict(include={"rules"}, exclude_unset=True)})
        with acting(request) as actor:
            flag = flag_services.flag_create(**fields, actor=actor, ip=client_address(request))
        return resource(request, flag_data(flag), status=201, headers={"Location": f"{request.path}/{flag.key}"})

    return idempotent(request, create)


# Members a PATCH may set to null: a boolean flag has no default value, a flag no schema, variants or rules.
NULLABLE_FLAG_FIELDS = {"default_value", "schema", "variants", "rules"}


@router.patch(
    "/flags/{key}",
    auth=FLAGS_CHANGE,
    response={200: FlagOut, 202: ChangeRequestOut, **WRITE_ERRORS},
    tags=["flags"],
    summary="Update a flag",
    description="A key and a kind are permanent: a different kind is 409 `immutable` naming kind. " + REQUESTED,
)
def flag_update(request, key: str, payload: FlagUpdate, if_match: str | None = IF_MATCH):
    fields = _definition(
        _fields(
            payload,
            allowed="description, default, default_value, variants, rules, schema, requires_approval, "
            "tenant_editable, risky, archived",
        )
    )
    nulls = sorted(name for name, value in fields.items() if value is None and name not in NULLABLE_FLAG_FIELDS)
    if nulls:
        raise Problem(422, "invalid_request", f"{nulls[0]} cannot be null.", field=nulls[0])
    kind = fields.pop("kind", None)
    with acting(request) as actor:
        flag = get_or_404(Flag.objects.select_for_update(), field="key", value=key, what="flag")
        require_if_match(request, flag_data(flag))
        if kind is not None and kind != flag.kind:
            raise Problem(
                409,
                "immutable",
                f"Flag {flag.key!r} is a {flag.kind} flag, and a kind is permanent (clients parse the value by it): "
                "define a new flag of the other kind instead.",
                field="kind",
            )
        if fields:
            try:
                flag_services.flag_update(flag=flag, actor=actor, ip=client_address(request), **fields)
            except ApprovalRequired as refusal:
                return change_requested(request, refusal, actor)
    return resource(request, flag_data(Flag.objects.get(pk=flag.pk)))


# --------------------------------------------------------------------------- overrides
def _overrides():
    return TenantFlag.objects.select_related("tenant", "flag")


def _override_or_404(tenant, flag, environment: str) -> TenantFlag:
    override = _overrides().filter(tenant=tenant, environment=environment, flag=flag).first()
    if override is None:
        where = "" if environment == PRODUCTION else f" in {environment}"
        raise Problem(404, "not_found", f"Tenant {tenant.slug!r} has no override of {flag.key!r}{where}.", field="key")
    return override


@router.get(
    "/tenants/{slug}/overrides",
    auth=FLAGS_READ,
    response={200: OverrideList, **ERRORS},
    tags=["overrides"],
    summary="List a tenant's flag overrides, by flag key (every environment's, or ?environment=)",
)
def overrides_list(request, slug: str, environment: str | None = ENVIRONMENTS):
    tenant = get_or_404(tenant_rows(), field="slug", value=slug, what="tenant")
    rows = _overrides().filter(tenant=tenant)
    if environment is not None:
        rows = rows.filter(environment=environment_or_404(tenant, environment))
    # production first among a flag's rows: it is what every key reads unless it names another.
    rows = rows.annotate(other=~Q(environment=PRODUCTION)).order_by("flag__key", "other", "environment")
    return resource(request, {"items": [override_data(row) for row in rows]})


@router.get(
    "/tenants/{slug}/overrides/{key}",
    auth=FLAGS_READ,
    response={200: OverrideOut, 304: None, **ERRORS},
    tags=["overrides"],
    summary="Get a tenant's override of a flag",
)
def override_get(request, slug: str, key: str, environment: str = ENVIRONMENT):
    tenant = get_or_404(tenant_rows(), field="slug", value=slug, what="tenant")
    environment = environment_or_404(tenant, environment)
    flag = get_or_404(Flag.objects.all(), field="key", value=key, what="flag")
    return resource(request, override_data(_override_or_404(tenant, flag, environment)))


@router.put(
    "/tenants/{slug}/overrides/{key}",
    auth=FLAGS_CHANGE,
    response={200: OverrideOut, 201: OverrideOut, 202: ChangeRequestOut, **WRITE_ERRORS},
    tags=["overrides"],
    summary="Set a tenant's override of a flag",
    description="Creates it (201) or, with If-Match, replaces it (200). API answers change after commit. " + REQUESTED,
)
def override_put(
    request,
    slug: str,
    key: str,
    payload: OverrideIn,
    if_match: str | None = IF_MATCH,
    environment: str = ENVIRONMENT,
):
    with acting(request) as actor:
        tenant = get_or_404(tenant_rows().select_for_update(of=("self",)), field="slug", value=slug, what="tenant")
        environment = environment_or_404(tenant, environment)
        flag = get_or_404(Flag.objects.all(), field="key", value=key, what="flag")
        current = _overrides().filter(tenant=tenant, environment=environment, flag=flag).first()
        if current is not None:
            require_if_match(request, override_data(current))
        try:
            flag_services.flag_set_override(
                tenant=tenant,
                flag=flag,
                enabled=payload.enabled,
                rollout_percent=payload.rollout_percent,
                variant=payload.variant or "",
                value=payload.value,
                owner_variants=payload.owner_variants,
                environment=environment,
                actor=actor,
                ip=client_address(request),
            )
        except ApprovalRequired as refusal:
            return change_requested(request, refusal, actor)
    override = _overrides().get(tenant=tenant, environment=environment, flag=flag)
    return resource(request, override_data(override), status=200 if current is not None else 201)


@router.delete(
    "/tenants/{slug}/overrides/{key}",
    auth=FLAGS_CHANGE,
    response={202: ChangeRequestOut, 204: None, **WRITE_ERRORS},
    tags=["overrides"],
    summary="Remove a tenant's override (the plan or flag default applies again)",
    description=REQUESTED,
)
def override_delete(request, slug: str, key: str, if_match: str | None = IF_MATCH, environment: str = ENVIRONMENT):
    with acting(request) as actor:
        tenant = get_or_404(tenant_rows().select_for_update(of=("self",)), field="slug", value=slug, what="tenant")
        environment = environment_or_404(tenant, environment)
        flag = get_or_404(Flag.objects.all(), field="key", value=key, what="flag")
        current = _override_or_404(tenant, flag, environment)
        require_if_match(request, override_data(current))
        try:
            flag_services.flag_clear_override(
                tenant=tenant, flag=flag, environment=environment, actor=actor, ip=client_address(request)
            )
        except ApprovalRequired as refusal:
            return change_requested(request, refusal, actor)
    return HttpResponse(status=204)


def _owner_toggles(tenant):
    return OwnerToggle.objects.select_related("tenant", "flag", "updated_by").filter(tenant=tenant)


@router.get(
    "/tenants/{slug}/owner-toggles",
    auth=TOGGLES_READ,
    response={200: OwnerTogglePage, **ERRORS},
    tags=["owner-toggles"],
    summary="List the tenant owner's feature toggles (by flag key and environment, cursor pages)",
)
def owner_toggles_list(
    request,
    slug: str,
    environment: str | None = ENVIRONMENTS,
    cursor: str | None = Query(None, max_length=500),
    limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT),
):
    tenant = get_or_404(tenant_rows(), field="slug", value=slug, what="tenant")
    rows = _owner_toggles(tenant)
    if environment is not None:
        rows = rows.filter(environment=environment_or_404(tenant, environment))
    # A flag has a toggle per environment: the page position is both (a space sorts before any key character).
    position = Concat(F("flag__key"), Value(" "), F("environment"), output_field=CharField())
    rows = rows.annotate(position=position)
    return page(request, rows, key="position", cursor=cursor, limit=limit, serialize=owner_toggle_data)


def _owner_toggle_or_404(tenant, flag_key: str, environment: str, *, lock: bool = False) -> OwnerToggle:
    rows = _owner_toggles(tenant).filter(environment=environment)
    return get_or_404(
        rows.select_for_update(of=("self",)) if lock else rows,
        field="flag__key",
        value=flag_key,
        what="owner toggle for this tenant",
        param="flag_key",
    )


@router.get(
    "/tenants/{slug}/owner-toggles/{flag_key}",
    auth=TOGGLES_READ,
    response={200: OwnerToggleOut, 304: None, **ERRORS},
    tags=["owner-toggles"],
    summary="Get the tenant owner's choice for a flag (its ETag is what a reset's If-Match names)",
)
def owner_toggle_get(request, slug: str, flag_key: str, environment: str = ENVIRONMENT):
    tenant = get_or_404(tenant_rows(), field="slug", value=slug, what="tenant")
    environment = environment_or_404(tenant, environment)
    return resource(request, owner_toggle_data(_owner_toggle_or_404(tenant, flag_key, environment)))


@router.delete(
    "/tenants/{slug}/owner-toggles/{flag_key}",
    auth=TOGGLES_RESET,
    response={202: ChangeRequestOut, 204: None, **WRITE_ERRORS},
    tags=["owner-toggles"],
    summary="Reset the tenant owner's choice for a flag (the override or default applies again)",
    description=REQUESTED,
)
def owner_toggle_reset(
    request, slug: str, flag_key: str, if_match: str | None = IF_MATCH, environment: str = ENVIRONMENT
):
    with acting(request) as actor:
        tenant = get_or_404(tenant_rows().select_for_update(of=("self",)), field="slug", value=slug, what="tenant")
        environment = environment_or_404(tenant, environment)
        toggle = _owner_toggle_or_404(tenant, flag_key, environment, lock=True)
        require_if_match(request, owner_toggle_data(toggle))
        try:
            flag_services.flag_owner_reset(
                tenant=tenant, flag=toggle.flag, environment=environment, actor=actor, ip=client_address(request)
            )
        except ApprovalRequired as refusal:
            return change_requested(request, refusal, actor)
    return HttpResponse(status=204)
