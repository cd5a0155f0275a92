"""Operations: rate-limit counters (read, reset) and circuit breakers (read, force open/close, reset)."""

from __future__ import annotations

from typing import Literal, get_args

from ninja import Field, Query, Router, Schema

from agentapi_admin.openapi import problems
from automation.api.auth import staff
from automation.api.http import Problem, acting, client_address, resource
from resilience.breakers import selectors as breaker_selectors
from resilience.breakers import services as breaker_services
from resilience.breakers.process import redis_breaker
from resilience.breakers.registry import registered_breakers
from resilience.ratelimit import SCOPES as LIMITER_SCOPES
from resilience.ratelimit.selectors import limited_identities
from resilience.ratelimit.services import ratelimit_reset_identity
from tenants.models import Tenant

router = Router(tags=["ops"])

READ = staff("ops:read")
OPERATE = staff("ops:write", "console.operate")
ERRORS = problems(400, 401, 403, 404, 422, 429, 503)
SCOPE_FILTER = Query(None, description="Only this limiter scope.")
Scope = Literal["user", "ip", "tenant", "form"]
assert set(get_args(Scope)) == set(LIMITER_SCOPES)


class IdentityOut(Schema):
    scope: Scope
    tenant: str = Field(description="The tenant's slug, or `-` for none.")
    identity: str
    limit: int
    burst: int
    window: float
    remaining: int
    limited: bool
    denied: int
    retry_after: float
    reset_after: float


class IdentityPage(Schema):
    items: list[IdentityOut]
    next_cursor: str | None


class ResetIn(Schema):
    scope: Scope
    tenant: str = Field("-", max_length=50, description="The tenant's slug, or `-` for none.")
    identity: str = Field(min_length=1, max_length=200)
    reason: str = Field(min_length=1, max_length=500, pattern=r"\S", description="Why; kept in the audit trail.")


class ResetOut(Schema):
    reset: bool = Field(description="False when the identity had no state (already at its full allowance).")


class BreakerOut(Schema):
    name: str
    state: Literal["closed", "open", "half-open"]
    forced: Literal["", "open", "closed"]
    fail_counter: int
    fail_max: int
    success_counter: int
    success_threshold: int
    reset_timeout: float
    storage: str
    degraded: bool


class ReasonIn(Schema):
    reason: str = Field(min_length=1, max_length=500, pattern=r"\S", description="Why; kept in the audit trail.")


def _identity(state) -> dict:
    return {
        "scope": state.scope,
        "tenant": state.tenant,
        "identity": state.identity,
        "limit": state.limit,
        "burst": state.burst,
        "window": state.window,
        "remaining": state.remaining,
        "limited": state.limited,
        "denied": state.denied,
        "retry_after": state.retry_after,
        "reset_after": state.reset_after,
    }


def _breaker(state) -> dict:
    return {name: getattr(state, name) for name in BreakerOut.model_fields}


@router.get("/ratelimits", auth=READ, response={200: IdentityPage, **ERRORS}, summary="Live rate-limit counters")
def ratelimits_list(
    request,
    # A slug's characters only: ':', '{' and '}' split Redis keys (resilience.ratelimit.keys).
    tenant: str | None = Query(
        None, max_length=50, pattern=r"^[-a-zA-Z0-9_]+$", description="A tenant slug, or `-` for none."
    ),
    scope: Scope | None = SCOPE_FILTER,
    q: str = Query("", max_length=200, description="Part of the identity."),
    cursor: str | None = Query(None, pattern=r"^[0-9]{1,19}$", description="`next_cursor` of the previous page."),
    limit: int = Query(50, ge=1, le=200),
):
    states, next_cursor = limited_identities(tenant=tenant, scope=scope, text=q, cursor=int(cursor or 0), count=limit)
    body = {"items": [_identity(state) for state in states], "next_cursor": str(next_cursor) if next_cursor else None}
    return resource(request, body)


@router.post(
    "/ratelimits/reset",
    auth=OPERATE,
    response={200: ResetOut, **ERRORS},
    summary="Give one identity its full allowance back (audited)",
)
def ratelimit_reset(request, payload: ResetIn):
    tenant = Tenant.objects.filter(slug=payload.tenant).first() if payload.tenant != "-" else None
    if payload.tenant != "-" and tenant is None:
        raise Problem(422, "invalid_request", f"No tenant with slug {payload.tenant!r}.", field="tenant")
    with acting(request) as actor:
        reset = ratelimit_reset_identity(
            scope=payload.scope,
            tenant=tenant,
            identity=payload.identity,
            actor=actor,
            reason=payload.reason,
            ip=client_address(request),
        )
    return resource(request, {"reset": reset})


def _known(name: str) -> str:
    if name != redis_breaker.name and name not in registered_breakers():
        raise Problem(404, "not_found", f"No breaker named {name!r}.", field="name")
    return name


@router.get("/breakers", auth=READ, response={200: list[BreakerOut], **ERRORS}, summary="Every circuit breaker")
def breakers_list(request):
    return resource(request, [_breaker(state) for state in breaker_selectors.breakers_snapshot()])


@router.get("/breakers/{name}", auth=READ, response={200: BreakerOut, **ERRORS}, summary="One circuit breaker")
def breaker_get(request, name: str):
    return resource(request, _breaker(breaker_selectors.breaker_state(_known(name))))


def _act(request, name: str, reason: str, service):
    _known(name)
    if name == redis_breaker.name:
        raise Problem(
            409,
            "process_breaker",
            "The Redis breaker lives in each process's memory; it cannot be forced from one request.",
            field="name",
        )
    with acting(request) as actor:
        service(name=name, actor=actor, reason=reason, ip=client_address(request))
    return resource(request, _breaker(breaker_selectors.breaker_state(name)))


ACTION_ERRORS = {200: BreakerOut, **problems(400, 401, 403, 404, 409, 422, 429, 503)}


@router.post("/breakers/{name}/force-open", auth=OPERATE, response=ACTION_ERRORS, summary="Pin a breaker open")
def breaker_force_open(request, name: str, payload: ReasonIn):
    return _act(request, name, payload.reason, breaker_services.breaker_force_open)


@router.post("/breakers/{name}/force-close", auth=OPERATE, response=ACTION_ERRORS, summary="Pin a breaker closed")
def breaker_force_close(request, name: str, payload: ReasonIn):
    return _act(request, name, payload.reason, breaker_services.breaker_force_close)


@router.post("/breakers/{name}/reset", auth=OPERATE, response=ACTION_ERRORS, summary="Unpin, close and zero a breaker")
def breaker_reset(request, name: str, payload: ReasonIn):
    return _act(request, name, payload.reason, breaker_services.breaker_reset)
