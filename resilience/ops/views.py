"""Admin ops pages. Thin: parse input, call a selector or service, render HTML or the JSON twin."""

from __future__ import annotations

import dataclasses
import json
from functools import wraps
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Q
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django_redis.exceptions import ConnectionInterrupted
from redis.exceptions import RedisError

from resilience.breakers import selectors as breaker_selectors
from resilience.breakers import services as breaker_services
from resilience.breakers.registry import registered_breakers, storage_degraded
from resilience.exceptions import RedisDisabled, SessionNotFound
from resilience.health.selectors import redis_failure_since, redis_health_snapshot
from resilience.models import OPERATE_PERMISSION
from resilience.ops.forms import (
    BREAKER_ACTIONS,
    BreakerTargetForm,
    IdentityTargetForm,
    RateLimitFilterForm,
    ReasonForm,
    SessionSearchForm,
    SessionTargetForm,
    TenantTargetForm,
    ThrottleLookupForm,
)
from resilience.ratelimit import selectors as ratelimit_selectors
from resilience.ratelimit import services as ratelimit_services
from resilience.sessions import selectors as session_selectors
from resilience.sessions import services as session_services
from tenants.models import Tenant

# What a page catches when Redis (or the storage behind it) fails, to say so instead of a 500.
STORAGE_ERRORS = (RedisError, ConnectionInterrupted, RedisDisabled, ConnectionError, OSError)
SEARCH_LIMIT = 20


def wants_json(request) -> bool:
    return request.GET.get("format") == "json"


def ops_page(view):
    """Admit active staff only: others get the admin login (HTML) or a 403 JSON body (JSON twin)."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        user = request.user
        if not (user.is_active and user.is_staff):
            if wants_json(request):
                return JsonResponse({"error": "Staff login required.", "login": reverse("admin:login")}, status=403)
            return redirect_to_login(request.get_full_path(), reverse("admin:login"))
        return view(request, *args, **kwargs)

    return never_cache(csrf_protect(wrapped))


def require_operate(request) -> None:
    """Refuse an action to staff without the resilience.operate permission."""
    if not request.user.has_perm(OPERATE_PERMISSION):
        raise PermissionDenied("Acting from the ops pages needs the 'Can act from the ops pages' permission.")


def client_ip(request) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


def render_ops(request, page: str, context: dict, data: dict, *, json_status: int = 200):
    """Render the page, its live region alone (htmx poll) or its JSON twin."""
    if wants_json(request):
        return JsonResponse(data, status=json_status, json_dumps_params={"indent": 1})
    context = {
        **admin.site.each_context(request),
        "page": page,
        "live_template": f"admin/ops/{page}_live.html",
        "refresh_seconds": settings.RESILIENCE_OPS_REFRESH_SECONDS,
        "now": timezone.now(),
        "can_operate": request.user.has_perm(OPERATE_PERMISSION),
        "json_url": _with_format_json(request),
        **context,
    }
    if request.headers.get("HX-Request"):
        return render(request, "admin/ops/live.html", context)
    return render(request, f"admin/ops/{page}.html", context)


def _with_format_json(request) -> str:
    query = request.GET.copy()
    query["format"] = "json"
    return f"{request.path}?{query.urlencode()}"


def storage_failure(exc: BaseException) -> dict:
    """Describe a storage failure for a page: what failed and since when."""
    return {"error": f"{type(exc).__name__}: {exc}", "failing_since": redis_failure_since(failed=True)}


# ------------------------------------------------------------------------ Redis
@ops_page
def redis_health(request):
    """Redis health: latency, server, memory, throughput, keyspace, persistence, slowlog, app areas."""
    snapshot = redis_health_snapshot()
    return render_ops(
        request,
        "redis",
        {"title": "Redis health", "snapshot": snapshot},
        snapshot,
        json_status=200 if snapshot["ok"] else 503,
    )


# --------------------------------------------------------------------- sessions
def _user_row(user, count: int) -> dict:
    return {
        "id": user.pk,
        "username": user.get_username(),
        "email": user.email,
        "staff": user.is_staff,
        "sessions": count,
    }


@ops_page
def sessions(request):
    """Live sessions: users with sessions, a search by user, one user's sessions with revoke actions."""
    form = SessionSearchForm(request.GET)
    clean = form.cleaned_data if form.is_valid() else {}
    q, user_id, cursor = clean.get("q") or "", clean.get("user"), clean.get("cursor") or 0
    context: dict = {"title": "Sessions", "form": form, "q": q, "failure": None, "selected": None}
    data: dict = {"engine": settings.SESSION_ENGINE}
    users_model = get_user_model()
    try:
        if user_id:
            selected = users_model.objects.filter(pk=user_id).first()
            if selected is None:
                form.add_error(None, f"No user with id {user_id}.")
            else:
                infos = session_selectors.sessions_for_user(selected)
                context.update(selected=selected, session_infos=infos, current_ref=_current_ref(request))
                data.update(user=_user_row(selected, len(infos)), sessions=[info.as_dict() for info in infos])
        if context["selected"] is None:
            if q:
                matches = users_model.objects.filter(Q(username__icontains=q) | Q(email__icontains=q)).order_by(
                    "username"
                )[:SEARCH_LIMIT]
                rows = [(user, len(session_selectors.sessions_for_user(user))) for user in matches]
                next_cursor = 0
            else:
                rows, next_cursor = session_selectors.session_users(cursor=cursor, count=50)
            context.update(user_rows=rows, next_cursor=next_cursor)
            data.update(users=[_user_row(user, n) for user, n in rows], next_cursor=next_cursor)
        redis_failure_since(failed=False)
    except STORAGE_ERRORS as exc:
        context["failure"] = data["failure"] = storage_failure(exc)
    if form.errors:
        data["errors"] = form.errors.get_json_data()
    status = 503 if context["failure"] else (400 if form.errors else 200)
    return render_ops(request, "sessions", context, data, json_status=status)


def _current_ref(request) -> str | None:
    key = request.session.session_key
    return session_selectors.session_ref(key) if key else None


def _sessions_url(user_id=None) -> str:
    url = reverse("ops:sessions")
    return f"{url}?user={user_id}" if user_id else url


def _session_target(request):
    """Return (user, form) for a revoke action, or (None, form) with the reason in messages."""
    target = SessionTargetForm(request.POST if request.method == "POST" else request.GET)
    if not target.is_valid():
        messages.error(request, "; ".join(e for errors in target.errors.values() for e in errors))
        return None, target
    user = get_user_model().objects.filter(pk=target.cleaned_data["user"]).first()
    if user is None:
        messages.error(request, f"No user with id {target.cleaned_data['user']}.")
    return user, target


@ops_page
def session_revoke(request):
    """Confirm with a reason, then revoke one session (audited)."""
    require_operate(request)
    user, target = _session_target(request)
    if user is None:
        return redirect(_sessions_url())
    try:
        info = session_selectors.session_for_ref(user, target.cleaned_data.get("ref") or "")
    except STORAGE_ERRORS as exc:
        messages.error(request, f"Could not read sessions: {storage_failure(exc)['error']}")
        return redirect(_sessions_url(user.pk))
    if info is None:
        messages.warning(request, "That session has already ended.")
        return redirect(_sessions_url(user.pk))
    form = ReasonForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            session_services.session_revoke(
                session_key=info.session_key,
                actor=request.user,
                reason=form.cleaned_data["reason"],
                ip=client_ip(request),
            )
        except SessionNotFound:
            messages.warning(request, "That session has already ended.")
        except STORAGE_ERRORS as exc:
            messages.error(request, f"Nothing was revoked: {storage_failure(exc)['error']}")
        else:
            messages.success(request, f"Revoked session {info.ref} of {user.get_username()} ({info.ip or 'no IP'}).")
        return redirect(_sessions_url(user.pk))
    context = {
        **admin.site.each_context(request),
        "title": "Revoke a session",
        "back_url": _sessions_url(user.pk),
        "target_user": user,
        "info": info,
        "form": form,
        "is_current": info.session_key == request.session.session_key,
    }
    return render(request, "admin/ops/session_revoke.html", context)


@ops_page
def sessions_revoke_all(request):
    """Confirm with a reason, then revoke every session of a user except the admin's own (audited)."""
    require_operate(request)
    user, _ = _session_target(request)
    if user is None:
        return redirect(_sessions_url())
    keep = request.session.session_key if user.pk == request.user.pk else None
    try:
        infos = session_selectors.sessions_for_user(user)
    except STORAGE_ERRORS as exc:
        messages.error(request, f"Could not read sessions: {storage_failure(exc)['error']}")
        return redirect(_sessions_url(user.pk))
    form = ReasonForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            count = session_services.sessions_revoke_all(
                user=user,
                actor=request.user,
                except_key=keep,
                reason=form.cleaned_data["reason"],
                ip=client_ip(request),
            )
        except STORAGE_ERRORS as exc:
            messages.error(request, f"Nothing was revoked: {storage_failure(exc)['error']}")
        else:
            messages.success(request, f"Revoked {count} session(s) of {user.get_username()}.")
        return redirect(_sessions_url(user.pk))
    context = {
        **admin.site.each_context(request),
        "title": "Revoke all sessions",
        "back_url": _sessions_url(user.pk),
        "target_user": user,
        "doomed": [info for info in infos if info.session_key != keep],
        "keeps_own": keep is not None,
        "form": form,
    }
    return render(request, "admin/ops/sessions_revoke_all.html", context)


# ------------------------------------------------------------------ rate limits
PAGE_SIZE = 50


def _state_row(state) -> dict:
    return dataclasses.asdict(state)


def _ratelimits_url(**query) -> str:
    query = {k: v for k, v in query.items() if v not in (None, "")}
    return f"{reverse('ops:ratelimits')}?{urlencode(query)}" if query else reverse("ops:ratelimits")


@ops_page
def ratelimits(request):
    """Live rate-limit identities from the limiter's index, filtered and paged by ZSCAN cursor."""
    form = RateLimitFilterForm(request.GET)
    clean = form.cleaned_data if form.is_valid() else {}
    tenant, scope, text = clean.get("tenant") or None, clean.get("scope") or None, clean.get("q") or ""
    cursor, count = clean.get("cursor") or 0, clean.get("count") or PAGE_SIZE
    lookup = ThrottleLookupForm(request.GET) if ("ip" in request.GET or "username" in request.GET) else None
    context: dict = {"title": "Rate-limit counters", "form": form, "lookup": lookup or ThrottleLookupForm()}
    context.update(tenant=tenant, scope=scope, text=text, failure=None, states=[], top=None, throttle=None)
    data: dict = {"filters": {"tenant": tenant, "scope": scope, "q": text, "cursor": cursor, "count": count}}
    try:
        if not form.errors:
            states, next_cursor = ratelimit_selectors.limited_identities(
                tenant=tenant, scope=scope, text=text, cursor=cursor, count=count
            )
            context.update(states=states, next_cursor=next_cursor, cursor=cursor)
            data.update(identities=[_state_row(s) for s in states], next_cursor=next_cursor)
            if tenant:
                top = ratelimit_selectors.top_limited(tenant=tenant, n=10)
                context["top"] = top
                data["top_limited"] = [_state_row(s) for s in top]
        if lookup is not None and lookup.is_valid():
            throttle = ratelimit_selectors.form_throttle_usage(
                ip=lookup.cleaned_data["ip"] or None, username=lookup.cleaned_data["username"] or None
            )
            context["throttle"] = data["form_throttles"] = throttle
        redis_failure_since(failed=False)
    except STORAGE_ERRORS as exc:
        context["failure"] = data["failure"] = storage_failure(exc)
    errors = {**form.errors.get_json_data(), **(lookup.errors.get_json_data() if lookup is not None else {})}
    if errors:
        data["errors"] = errors
    query = {"tenant": tenant, "scope": scope, "q": text, "count": clean.get("count")}
    if context.get("next_cursor"):
        context["next_url"] = _ratelimits_url(**query, cursor=context["next_cursor"])
    if cursor:
        context["first_url"] = _ratelimits_url(**query)
    status = 503 if context["failure"] else (400 if errors else 200)
    return render_ops(request, "ratelimits", context, data, json_status=status)


def _tenant_object(label: str):
    return Tenant.objects.filter(slug=label).first() if label != "-" else None


def _invalid(request, form, back: str):
    messages.error(request, "; ".join(e for errors in form.errors.values() for e in errors))
    return redirect(back)


@ops_page
def ratelimit_reset(request):
    """Confirm with a reason, then give one identity its full allowance back (audited)."""
    require_operate(request)
    target = IdentityTargetForm(request.POST if request.method == "POST" else request.GET)
    if not target.is_valid():
        return _invalid(request, target, reverse("ops:ratelimits"))
    scope, label, identity = (target.cleaned_data[k] for k in ("scope", "tenant", "identity"))
    back = _ratelimits_url(tenant=label, scope=scope)
    try:
        state = ratelimit_selectors.identity_state(scope, label, identity)
    except STORAGE_ERRORS as exc:
        messages.error(request, f"Could not read the limiter: {storage_failure(exc)['error']}")
        return redirect(back)
    form = ReasonForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            had_state = ratelimit_services.ratelimit_reset_identity(
                scope=scope,
                tenant=_tenant_object(label) or label,
                identity=identity,
                actor=request.user,
                reason=form.cleaned_data["reason"],
                ip=client_ip(request),
            )
        except STORAGE_ERRORS as exc:
            messages.error(request, f"Nothing was reset: {storage_failure(exc)['error']}")
        else:
            verb = "Reset" if had_state else "Nothing to reset for"
            messages.success(request, f"{verb} {scope} {identity} (tenant {label}).")
        return redirect(back)
    context = {
        **admin.site.each_context(request),
        "title": "Reset a rate-limit identity",
        "back_url": back,
        "back_label": "Rate-limit counters",
        "scope": scope,
        "tenant_label": label,
        "identity": identity,
        "state": state,
        "form": form,
    }
    return render(request, "admin/ops/ratelimit_reset.html", context)


@ops_page
def ratelimit_reset_tenant(request):
    """Confirm with a reason, then reset every identity of a tenant (audited)."""
    require_operate(request)
    target = TenantTargetForm(request.POST if request.method == "POST" else request.GET)
    if not target.is_valid():
        return _invalid(request, target, reverse("ops:ratelimits"))
    label = target.cleaned_data["tenant"]
    back = _ratelimits_url(tenant=label)
    form = ReasonForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            reset = ratelimit_services.ratelimit_reset_tenant(
                tenant=_tenant_object(label) or label,
                actor=request.user,
                reason=form.cleaned_data["reason"],
                ip=client_ip(request),
            )
        except STORAGE_ERRORS as exc:
            messages.error(request, f"Nothing was reset: {storage_failure(exc)['error']}")
        else:
            messages.success(request, f"Reset {reset} identit{'y' if reset == 1 else 'ies'} of tenant {label}.")
        return redirect(back)
    context = {
        **admin.site.each_context(request),
        "title": "Reset every identity of a tenant",
        "back_url": back,
        "back_label": "Rate-limit counters",
        "tenant_label": label,
        "form": form,
    }
    return render(request, "admin/ops/ratelimit_reset_tenant.html", context)


# --------------------------------------------------------------------- breakers
def _breaker_row(state) -> dict:
    return dataclasses.asdict(state)


@ops_page
def breakers(request):
    """Every registered breaker with its counters, timings and recent transitions."""
    context: dict = {"title": "Circuit breakers", "failure": None, "breakers": [], "events": []}
    data: dict = {}
    try:
        states = breaker_selectors.breakers_snapshot()
        events = breaker_selectors.breaker_events(n=20)
        degraded = storage_degraded()
        context.update(breakers=states, events=events, degraded=degraded)
        data.update(
            storage_degraded=degraded,
            breakers=[_breaker_row(s) for s in states],
            events=[dataclasses.asdict(e) for e in events],
        )
    except STORAGE_ERRORS as exc:
        context["failure"] = data["failure"] = storage_failure(exc)
    return render_ops(
        request,
        "breakers",
        context,
        json.loads(json.dumps(data, cls=DjangoJSONEncoder)),
        json_status=503 if context["failure"] else 200,
    )


@ops_page
def breaker_action(request):
    """Confirm with a reason, then force a breaker open or closed, or reset it (audited)."""
    require_operate(request)
    target = BreakerTargetForm(request.POST if request.method == "POST" else request.GET)
    if not target.is_valid():
        return _invalid(request, target, reverse("ops:breakers"))
    name, action = target.cleaned_data["name"], target.cleaned_data["action"]
    back = reverse("ops:breakers")
    if name not in registered_breakers():
        messages.error(request, f"No breaker named {name!r} (only named breakers can be forced from here).")
        return redirect(back)
    form = ReasonForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        service = {
            "force_open": breaker_services.breaker_force_open,
            "force_close": breaker_services.breaker_force_close,
            "reset": breaker_services.breaker_reset,
        }[action]
        try:
            service(name=name, actor=request.user, reason=form.cleaned_data["reason"], ip=client_ip(request))
        except ValueError as exc:
            messages.error(request, str(exc))
        except STORAGE_ERRORS as exc:
            messages.error(request, f"Nothing was changed: {storage_failure(exc)['error']}")
        else:
            messages.success(
                request,
                f"{BREAKER_ACTIONS[action]}: breaker {name} is now {breaker_selectors.breaker_state(name).state}.",
            )
        return redirect(back)
    try:
        state = breaker_selectors.breaker_state(name)
    except STORAGE_ERRORS:
        state = None
    context = {
        **admin.site.each_context(request),
        "title": f"{BREAKER_ACTIONS[action]} breaker {name}",
        "back_url": back,
        "back_label": "Circuit breakers",
        "name": name,
        "action": action,
        "action_label": BREAKER_ACTIONS[action],
        "state": state,
        "form": form,
    }
    return render(request, "admin/ops/breaker_action.html", context)
