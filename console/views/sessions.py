"""The sessions page: users with sessions, search, revoke one / all."""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.db.models import Q
from django.shortcuts import redirect, render
from django.urls import reverse

from agentapi_admin.client_address import client_ip
from console.forms import (
    ReasonForm,
    SessionSearchForm,
    SessionTargetForm,
)
from console.views.common import (
    SEARCH_LIMIT,
    ops_page,
    render_ops,
    require_operate,
    storage_failure,
)
from resilience.exceptions import REDIS_UNAVAILABLE_ERRORS, SessionNotFound
from resilience.health.selectors import redis_failure_since
from resilience.sessions import selectors as session_selectors
from resilience.sessions import services as session_services


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
            rows: list[tuple[AbstractBaseUser, int]]
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
        context["unreachable"] = data["unreachable"] = session_selectors.unreachable_session_stores()
        if not context["unreachable"]:
            redis_failure_since(failed=False)
    except REDIS_UNAVAILABLE_ERRORS as exc:
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
        messages.error(request, "; ".join(str(e) for errors in target.errors.values() for e in errors))
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
    except REDIS_UNAVAILABLE_ERRORS as exc:
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
        except REDIS_UNAVAILABLE_ERRORS as exc:
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
    except REDIS_UNAVAILABLE_ERRORS as exc:
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
        except REDIS_UNAVAILABLE_ERRORS as exc:
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
