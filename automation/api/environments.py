"""A tenant's environments: list, get, create, delete; the diff between two, and promoting one onto another.

production is every tenant's and no row: it is listed first, cannot be deleted, and is
where overrides, owner toggles and API keys go unless the request names another.
"""

from __future__ import annotations

from collections import defaultdict

from django.db.models import Count
from django.http import HttpResponse
from ninja import Query, Router

from automation.api.auth import require_scope, staff
from automation.api.changes import change_requested
from automation.api.http import Problem, acting, client_address, get_or_404, require_if_match, resource
from automation.api.idempotency import idempotent
from automation.api.schemas import (
    ChangeRequestOut,
    EnvironmentCreate,
    EnvironmentDiffOut,
    EnvironmentList,
    EnvironmentOut,
    PromoteIn,
    PromotionOut,
)
from automation.api.tenants import ERRORS, IDEMPOTENCY_KEY, IF_MATCH, WRITE_ERRORS, tenant_rows
from tenants.exceptions import ApprovalRequired, TenantsError
from tenants.models import PRODUCTION, ApiKey, Environment, OwnerToggle, Tenant, TenantFlag
from tenants.services import environments as services
from tenants.services.environments import LAYERS, OVERRIDES, EnvironmentChanged, EnvironmentDiff

router = Router(tags=["environments"])

READ = staff("tenants:read", "tenants.view_tenant")
DIFF = staff("tenants:read", "tenants.view_tenant", "tenants.view_flag")
# An environment is part of its tenant: adding or removing one changes the tenant.
CHANGE = staff("tenants:write", "tenants.change_tenant")
# Promoting owner toggles changes the tenant (as resetting them does); promoting overrides is a flags change too.
PROMOTE = staff("tenants:write", "tenants.change_tenant")
PROMOTE_OVERRIDES = ("flags:write", "tenants.change_flag")
FROM = Query(..., alias="from", min_length=1, max_length=64, description="The source environment's key.")
LAYERS_QUERY = Query(None, max_length=100, description="Comma-separated: overrides, owner_toggles; default both.")


# ------------------------------------------------------------------------------- reads
def environment_or_404(tenant: Tenant, key: str, *, field: str = "environment") -> str:
    """Return `key` if the tenant has that environment; else a 404 problem naming `field` and what exists."""
    try:
        return services.environment_require(tenant, key, field=field)
    except TenantsError as exc:
        raise Problem(404, "not_found", exc.message, field=field) from None


def _counts(tenant: Tenant) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = defaultdict(lambda: {"overrides": 0, "owner_toggles": 0, "live_api_keys": 0})
    for name, rows in (
        ("overrides", TenantFlag.objects.filter(tenant=tenant)),
        ("owner_toggles", OwnerToggle.objects.filter(tenant=tenant)),
        ("live_api_keys", ApiKey.objects.filter(tenant=tenant, revoked_at__isnull=True)),
    ):
        for environment, number in rows.order_by().values_list("environment").annotate(n=Count("pk")):
            counts[str(environment)][name] = int(number)
    return counts


def environments_data(tenant: Tenant) -> list[dict]:
    """Return the tenant's environments as the API shows them: production first, then the others by key."""
    counts = _counts(tenant)
    rows = [(PRODUCTION, "Production", tenant.created_at)]
    rows += Environment.objects.filter(tenant=tenant).order_by("key").values_list("key", "name", "created_at")
    return [
        {"tenant": tenant.slug, "key": key, "name": name, "created_at": created_at, "counts": counts[key]}
        for key, name, created_at in rows
    ]


def _environment(tenant: Tenant, key: str) -> dict:
    found = [row for row in environments_data(tenant) if row["key"] == key]
    if not found:
        raise Problem(404, "not_found", f"Tenant {tenant.slug!r} has no environment {key!r}.", field="key")
    return found[0]


@router.get(
    "/tenants/{slug}/environments",
    auth=READ,
    response={200: EnvironmentList, **ERRORS},
    summary="List a tenant's environments, production first, with what each holds",
)
def environments_list(request, slug: str):
    tenant = get_or_404(tenant_rows(), field="slug", value=slug, what="tenant")
    body = {"items": environments_data(tenant), "max_environments": tenant.plan.max_environments}
    return resource(request, body)


@router.get(
    "/tenants/{slug}/environments/{key}",
    auth=READ,
    response={200: EnvironmentOut, 304: None, **ERRORS},
    summary="Get one environment (its ETag is what a delete's If-Match names)",
)
def environment_get(request, slug: str, key: str):
    tenant = get_or_404(tenant_rows(), field="slug", value=slug, what="tenant")
    return resource(request, _environment(tenant, key))


# ------------------------------------------------------------------------------ writes
@router.post(
    "/tenants/{slug}/environments",
    auth=CHANGE,
    response={201: EnvironmentOut, **WRITE_ERRORS},
    summary="Add an environment within the plan's bound (Idempotency-Key)",
    description="A bad key, or one more than the plan's max_environments, is 422 naming key; a duplicate 409.",
)
def environment_create(request, slug: str, payload: EnvironmentCreate, idempotency_key: str | None = IDEMPOTENCY_KEY):
    def create():
        tenant = get_or_404(tenant_rows(), field="slug", value=slug, what="tenant")
        if Environment.objects.filter(tenant=tenant, key=payload.key).exists():
            raise Problem(
                409, "conflict", f"Tenant {tenant.slug!r} has an environment {payload.key!r} already.", field="key"
            )
        with acting(request) as actor:
            environment = services.environment_create(
                tenant=tenant, key=payload.key, name=payload.name, actor=actor, ip=client_address(request)
            )
        data = _environment(tenant, environment.key)
        return resource(request, data, status=201, headers={"Location": f"{request.path}/{environment.key}"})

    return idempotent(request, create)


@router.delete(
    "/tenants/{slug}/environments/{key}",
    auth=CHANGE,
    response={204: None, **WRITE_ERRORS},
    summary="Delete an environment with its overrides and owner toggles (409 while live API keys read it)",
    description=(
        "production cannot be deleted (422 naming environment). Revoke the environment's keys first. One that "
        "holds overrides also needs flags:write (tenants.change_flag), and one holding an override of a flag "
        "that requires approval is 422 until that override is cleared through a change request."
    ),
)
def environment_delete(request, slug: str, key: str, if_match: str | None = IF_MATCH):
    with acting(request) as actor:
        tenant = get_or_404(tenant_rows().select_for_update(of=("self",)), field="slug", value=slug, what="tenant")
        require_if_match(request, _environment(tenant, key))
        live = list(
            ApiKey.objects.filter(tenant=tenant, environment=key, revoked_at__isnull=True)
            .exclude(environment=PRODUCTION)
            .order_by("prefix")
            .values_list("prefix", "name")
        )
        if live:
            names = ", ".join(name for _, name in live[:5]) + (" …" if len(live) > 5 else "")
            raise Problem(
                409,
                "environment_in_use",
                f"Environment {key!r} is read by {len(live)} live API key(s) ({names}): revoke them first, "
                "or they would answer with no overrides or owner toggles at all.",
                field="environment",
                api_keys=[prefix for prefix, _ in live],
            )
        if TenantFlag.objects.filter(tenant=tenant, environment=key).exists():
            # Its overrides go with it: the same permission as removing them one by one.
            require_scope(request.auth, *PROMOTE_OVERRIDES)
        services.environment_delete(tenant=tenant, key=key, actor=actor, ip=client_address(request))
    return HttpResponse(status=204)


# --------------------------------------------------------------------- diff and promote
def diff_data(diff: EnvironmentDiff) -> dict:
    data = diff.as_dict()
    data["changes"] = [{**change.as_dict(), "verb": change.verb} for change in diff.changes]
    return data


def _layers(raw: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip()) if raw else LAYERS


def _as_from(exc: TenantsError) -> TenantsError:
    """Name the source as the API does (`from`), not as the service does (`source`)."""
    if exc.field == "source":
        return TenantsError("from" + exc.message.removeprefix("source"), field="from")
    return exc


def _diff_of(tenant: Tenant, source: str, target: str, layers) -> EnvironmentDiff:
    try:
        return services.environment_diff(tenant=tenant, source=source, target=target, layers=layers)
    except TenantsError as exc:
        raise _as_from(exc) from None


@router.get(
    "/tenants/{slug}/environments/{target}/promote",
    auth=DIFF,
    response={200: EnvironmentDiffOut, 304: None, **ERRORS},
    summary="What promoting ?from= onto this environment would change, and the digest a promotion sends back",
)
def environment_diff(request, slug: str, target: str, source: str = FROM, layers: str | None = LAYERS_QUERY):
    tenant = get_or_404(tenant_rows(), field="slug", value=slug, what="tenant")
    target = environment_or_404(tenant, target, field="target")
    return resource(request, diff_data(_diff_of(tenant, source, target, _layers(layers))))


@router.post(
    "/tenants/{slug}/environments/{target}/promote",
    auth=PROMOTE,
    response={200: PromotionOut, 202: ChangeRequestOut, **WRITE_ERRORS},
    summary="Make this environment's overrides and owner toggles those of `from`, as the diff with `digest` showed",
    description=(
        "One transaction and one audit event (environment.promote). A diff that changed since (someone changed "
        "either environment) is 409 environment_changed naming digest, with the new diff's `digest`. Promoting "
        "overrides needs flags:write (tenants.change_flag) as well. A promotion touching a flag that requires "
        "approval is not applied: 202 with the change request it became, applied once another staff user approves."
    ),
)
def environment_promote(request, slug: str, target: str, payload: PromoteIn):
    layers = tuple(payload.layers) if payload.layers else LAYERS
    if OVERRIDES in layers:
        require_scope(request.auth, *PROMOTE_OVERRIDES)
    with acting(request) as actor:
        tenant = get_or_404(tenant_rows(), field="slug", value=slug, what="tenant")
        target = environment_or_404(tenant, target, field="target")
        try:
            diff = services.environment_promote(
                tenant=tenant,
                source=payload.from_,
                target=target,
                digest=payload.digest,
                layers=layers,
                actor=actor,
                ip=client_address(request),
            )
        except EnvironmentChanged as exc:
            fresh = _diff_of(tenant, payload.from_, target, layers)
            raise Problem(409, "environment_changed", exc.message, field="digest", digest=fresh.digest) from None
        except ApprovalRequired as refusal:
            return change_requested(request, refusal, actor)
        except TenantsError as exc:
            raise _as_from(exc) from None
    return resource(request, {**diff_data(diff), "applied": bool(diff.changes)})
