"""The admin's answer to a write refused for lack of approval: a change request, a message and its link."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html

from tenants.approvals import approval_request
from tenants.exceptions import ApprovalRequired, TenantsError


def approval_requested(model_admin, request, refusal: ApprovalRequired, ip):
    """Turn a refused write into a change request; message its link, remember it for the redirect, return it."""
    try:
        change = approval_request(refusal, actor=request.user, ip=ip)
    except TenantsError as exc:
        model_admin.message_user(request, f"{refusal.message} {exc.message}", messages.ERROR)
        return None
    opts = change._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[change.pk])
    model_admin.message_user(
        request,
        format_html(
            '{} Nothing changed yet: it is <a href="{}">change request #{}</a>, waiting for another staff '
            "user's approval.",
            refusal.message,
            url,
            change.pk,
        ),
        messages.WARNING,
    )
    request._change_request_url = url
    return change


class ApprovalRedirectMixin:
    """After a save that became a change request, show the request rather than "changed successfully"."""

    def response_change(self, request, obj):
        url = getattr(request, "_change_request_url", None)
        return HttpResponseRedirect(url) if url else super().response_change(request, obj)  # type: ignore[misc]
