"""Webhook endpoints of the tenant: create (secret shown once), edit, rotate the secret, delete, recent deliveries."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect
from django.utils.cache import add_never_cache_headers

from agentapi_admin.client_address import client_ip
from portal.access import Role, tenant_view
from portal.forms import WebhookEndpointForm
from portal.selectors import tenant_webhook_endpoint
from portal.views.layout import render_tenant
from webhooks.exceptions import WebhooksError
from webhooks.selectors import endpoint_recent_deliveries, endpoints_of_tenant, tenant_event_choices
from webhooks.services.endpoints import endpoint_create, endpoint_delete, endpoint_rotate_secret, endpoint_update

FIELDS = ("url", "description", "event_types", "enabled")


def _form(*args, **kwargs) -> WebhookEndpointForm:
    return WebhookEndpointForm(*args, event_choices=tenant_event_choices(), **kwargs)


def _shown_once(response):
    # The secret exists only in this response: keep it out of every cache and the back/forward cache.
    add_never_cache_headers(response)
    return response


def _list(request, membership, form, *, created=None, secret=None, status=200):
    context = {"endpoints": endpoints_of_tenant(membership.tenant), "form": form, "created": created, "secret": secret}
    response = render_tenant(request, membership, "portal/webhooks.html", context, section="webhooks", status=status)
    return _shown_once(response) if secret else response


@tenant_view(methods=("GET", "POST"), read_role=Role.ADMIN, write_role=Role.ADMIN)
def webhook_list(request, membership):
    """List the tenant's endpoints; owners and admins add new ones here."""
    if request.method == "GET":
        return _list(request, membership, _form(initial={"enabled": True}))
    form = _form(request.POST)
    if not form.is_valid():
        return _list(request, membership, form, status=400)
    try:
        endpoint, secret = endpoint_create(
            tenant=membership.tenant, actor=request.user, ip=client_ip(request), **form.cleaned_data
        )
    except WebhooksError as exc:
        form.add_error(exc.field if exc.field in FIELDS else None, exc.message.partition(": ")[2] or exc.message)
        return _list(request, membership, form, status=400)
    return _list(request, membership, _form(initial={"enabled": True}), created=endpoint, secret=secret)


def _detail(request, membership, endpoint, form, *, secret=None, status=200):
    context = {"endpoint": endpoint, "form": form, "deliveries": endpoint_recent_deliveries(endpoint), "secret": secret}
    response = render_tenant(
        request, membership, "portal/webhook_detail.html", context, section="webhooks", status=status
    )
    return _shown_once(response) if secret else response


ENDPOINT = {"endpoint_id": tenant_webhook_endpoint}


@tenant_view(methods=("GET", "POST"), read_role=Role.ADMIN, write_role=Role.ADMIN, objects=ENDPOINT)
def webhook_detail(request, membership, endpoint_id):
    """Show one endpoint with its recent deliveries (GET) or save its settings (POST)."""
    endpoint = endpoint_id
    if request.method == "GET":
        initial = {name: getattr(endpoint, name) for name in FIELDS}
        return _detail(request, membership, endpoint, _form(initial=initial))
    form = _form(request.POST)
    if not form.is_valid():
        return _detail(request, membership, endpoint, form, status=400)
    try:
        endpoint_update(endpoint=endpoint, actor=request.user, ip=client_ip(request), **form.cleaned_data)
    except WebhooksError as exc:
        form.add_error(exc.field if exc.field in FIELDS else None, exc.message.partition(": ")[2] or exc.message)
        return _detail(request, membership, endpoint, form, status=400)
    messages.success(request, "Webhook endpoint saved.")
    return redirect("portal:webhook_detail", tenant=membership.tenant.slug, endpoint_id=endpoint.pk)


@tenant_view(methods=("POST",), read_role=Role.ADMIN, write_role=Role.ADMIN, objects=ENDPOINT)
def webhook_rotate(request, membership, endpoint_id):
    """Add a new signing secret (shown once); the old ones keep signing for the overlap."""
    endpoint = endpoint_id
    secret = endpoint_rotate_secret(endpoint=endpoint, actor=request.user, ip=client_ip(request))
    initial = {name: getattr(endpoint, name) for name in FIELDS}
    return _detail(request, membership, endpoint, _form(initial=initial), secret=secret)


@tenant_view(methods=("GET", "POST"), read_role=Role.ADMIN, write_role=Role.ADMIN, objects=ENDPOINT)
def webhook_delete(request, membership, endpoint_id):
    """Confirm (GET) or perform (POST) deleting an endpoint and its delivery log."""
    endpoint = endpoint_id
    if request.method == "GET":
        return render_tenant(
            request, membership, "portal/webhook_delete.html", {"endpoint": endpoint}, section="webhooks"
        )
    url = endpoint.url
    endpoint_delete(endpoint=endpoint, actor=request.user, ip=client_ip(request))
    messages.success(request, f"The endpoint {url} is deleted; no more events are sent there.")
    return redirect("portal:webhooks", tenant=membership.tenant.slug)
