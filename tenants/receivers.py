"""Audit sign-ins: Django's auth signals are the one hook every login view (admin, portal) fires."""

from __future__ import annotations

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from agentapi_admin.client_address import client_ip
from audit.models import AuditAction
from audit.services import audit_record


def _where(request) -> str:
    return "portal" if request is not None and request.path.startswith("/portal/") else "admin"


@receiver(user_logged_in, dispatch_uid="audit_user_logged_in")
def audit_logged_in(sender, request, user, **kwargs) -> None:
    audit_record(
        actor=user, action=AuditAction.AUTH_LOGIN, obj=user, after={"via": _where(request)}, ip=client_ip(request)
    )


@receiver(user_logged_out, dispatch_uid="audit_user_logged_out")
def audit_logged_out(sender, request, user, **kwargs) -> None:
    if user is not None:
        audit_record(
            actor=user, action=AuditAction.AUTH_LOGOUT, obj=user, after={"via": _where(request)}, ip=client_ip(request)
        )


@receiver(user_login_failed, dispatch_uid="audit_user_login_failed")
def audit_login_failed(sender, credentials, request=None, **kwargs) -> None:
    # Django already masks the password in `credentials`; record only the username tried.
    username = str(credentials.get("username", ""))[:150]
    audit_record(
        actor=None,
        action=AuditAction.AUTH_LOGIN_FAILED,
        object_type="auth.user",
        object_id=username[:64],
        after={"username": username, "via": _where(request)},
        ip=client_ip(request),
    )
