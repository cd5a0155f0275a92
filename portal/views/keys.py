"""API keys: issue (the secret is shown once), list with last use, revoke."""

from django.contrib import messages
from django.shortcuts import redirect
from django.utils import timezone
from django.utils.cache import add_never_cache_headers

from agentapi_admin.client_address import client_ip
from portal.access import Role, tenant_view
from portal.forms import ApiKeyCreateForm
from portal.selectors import tenant_api_key, tenant_api_keys
from portal.views.layout import render_tenant
from tenants.exceptions import TenantsError
from tenants.selectors import apikeys_with_last_use, tenant_environments
from tenants.services.apikeys import DEFAULT_SCOPES, SCOPES, apikey_issue, apikey_revoke

SCOPE_CHOICES = [(scope, f"{scope} — {description}") for scope, description in SCOPES.items()]

# The service names its fields after its arguments; the form after what the user sees.
FORM_FIELDS = {"name": "name", "scopes": "scopes", "expires_at": "expires_on", "environment": "environment"}


def _form(environments, data=None) -> ApiKeyCreateForm:
    if data is not None:
        return ApiKeyCreateForm(data, scope_choices=SCOPE_CHOICES, environments=environments)
    return ApiKeyCreateForm(scope_choices=SCOPE_CHOICES, environments=environments, initial={"scopes": DEFAULT_SCOPES})


def _page(request, membership, form, *, created=None, secret=None, status=200):
    context = {
        "keys": apikeys_with_last_use(tenant_api_keys(membership.tenant)),
        "form": form,
        "created": created,
        "secret": secret,
        "now": timezone.now(),
    }
    response = render_tenant(request, membership, "portal/keys.html", context, section="keys", status=status)
    if secret:
        # The secret exists only in this response: keep it out of every cache and the back/forward cache.
        add_never_cache_headers(response)
    return response


@tenant_view(methods=("GET", "POST"), write_role=Role.ADMIN)
def key_list(request, membership):
    """List the tenant's keys with their environments; owners and admins issue new ones here."""
    environments = tenant_environments(membership.tenant)
    if request.method == "GET":
        return _page(request, membership, _form(environments))
    form = _form(environments, request.POST)
    if not form.is_valid():
        return _page(request, membership, form, status=400)
    # Rendered, not redirected: a redirect would need the secret stored somewhere to show it once.
    try:
        key, secret = apikey_issue(
            tenant=membership.tenant,
            name=form.cleaned_data["name"],
            scopes=form.cleaned_data["scopes"],
            expires_at=form.expires_at(),
            environment=form.cleaned_data["environment"],
            actor=request.user,
            ip=client_ip(request),
        )
    except TenantsError as exc:
        form.add_error(FORM_FIELDS.get(exc.field or ""), exc.message)
        return _page(request, membership, form, status=400)
    return _page(request, membership, _form(environments), created=key, secret=secret)


@tenant_view(methods=("GET", "POST"), read_role=Role.ADMIN, write_role=Role.ADMIN, objects={"key_id": tenant_api_key})
def key_revoke(request, membership, key_id):
    """Confirm (GET) or perform (POST) revoking one key."""
    key = key_id
    if request.method == "GET" or key.revoked_at is not None:
        if key.revoked_at is not None and request.method == "POST":
            messages.info(request, f"“{key.name}” was already revoked.")
            return redirect("portal:keys", tenant=membership.tenant.slug)
        [key] = apikeys_with_last_use([key])
        return render_tenant(request, membership, "portal/key_revoke.html", {"key": key}, section="keys")
    apikey_revoke(api_key=key, actor=request.user, ip=client_ip(request))
    messages.success(request, f"“{key.name}” ({key.prefix}…) is revoked; requests using it are refused from now on.")
    return redirect("portal:keys", tenant=membership.tenant.slug)
