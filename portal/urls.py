"""Portal URLs: every tenant page names its tenant, `/portal/t/<slug>/...`."""

from django.urls import include, path, register_converter

from portal.views import (
    account,
    auth,
    changes,
    environments,
    features,
    home,
    invitations,
    keys,
    members,
    usage,
    webhooks,
)


class IdConverter:
    """A database id: bounded digits, so absurd ids are a 404 before any query."""

    regex = "[0-9]{1,18}"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value) -> str:
        return str(value)


class FlagKeyConverter(IdConverter):
    """A flag key as tenants.models.FLAG_KEY_PATTERN allows it."""

    regex = "[a-z0-9_.-]{1,64}"


class TenantSlugConverter(IdConverter):
    """A tenant slug (SlugField, 50 characters)."""

    regex = "[-a-zA-Z0-9_]{1,50}"


class EnvironmentKeyConverter(IdConverter):
    """An environment key as tenants.models.ENVIRONMENT_KEY_PATTERN allows it."""

    regex = "[a-z][a-z0-9-]{0,31}"


class InvitationTokenConverter(IdConverter):
    """An invitation token (secrets.token_urlsafe(32): 43 URL-safe characters)."""

    regex = "[A-Za-z0-9_-]{20,100}"


register_converter(IdConverter, "portal_id")
register_converter(InvitationTokenConverter, "invitation_token")
register_converter(FlagKeyConverter, "flag_key")
register_converter(EnvironmentKeyConverter, "environment_key")
register_converter(TenantSlugConverter, "tenant_slug")

app_name = "portal"

tenant_patterns = [
    path("", home.tenant_home, name="tenant_home"),
    path("features/", features.feature_list, name="features"),
    path("features/<flag_key:flag_key>/", features.feature_toggle, name="feature_toggle"),
    path("features/<flag_key:flag_key>/schedule/", changes.feature_schedule, name="feature_schedule"),
    path("changes/", changes.scheduled_changes, name="changes"),
    # Not under features/: a flag may be keyed "evaluate".
    path("evaluate/", features.flag_evaluate, name="flag_evaluate"),
    path("environments/", environments.environment_list, name="environments"),
    path("environments/promote/", environments.environment_promote_view, name="environment_promote"),
    path(
        "environments/<environment_key:environment>/delete/",
        environments.environment_delete_view,
        name="environment_delete",
    ),
    path("keys/", keys.key_list, name="keys"),
    path("keys/<portal_id:key_id>/revoke/", keys.key_revoke, name="key_revoke"),
    path("members/", members.member_list, name="members"),
    path("members/<portal_id:membership_id>/role/", members.member_role, name="member_role"),
    path("members/<portal_id:membership_id>/remove/", members.member_remove, name="member_remove"),
    path("invitations/<portal_id:invitation_id>/revoke/", members.invitation_revoke_view, name="invitation_revoke"),
    path("usage/", usage.usage, name="usage"),
    path("webhooks/", webhooks.webhook_list, name="webhooks"),
    path("webhooks/<portal_id:endpoint_id>/", webhooks.webhook_detail, name="webhook_detail"),
    path("webhooks/<portal_id:endpoint_id>/rotate/", webhooks.webhook_rotate, name="webhook_rotate"),
    path("webhooks/<portal_id:endpoint_id>/delete/", webhooks.webhook_delete, name="webhook_delete"),
]

urlpatterns = [
    path("", home.index, name="index"),
    path("login/", auth.login, name="login"),
    path("logout/", auth.logout, name="logout"),
    path("account/", account.account, name="account"),
    path("account/password/", auth.password_change, name="password_change"),
    path("password-reset/", auth.password_reset, name="password_reset"),
    path("password-reset/sent/", auth.password_reset_done, name="password_reset_done"),
    path("password-reset/<uidb64>/<token>/", auth.password_reset_confirm, name="password_reset_confirm"),
    path("password-reset/done/", auth.password_reset_complete, name="password_reset_complete"),
    path("invitations/<invitation_token:token>/", invitations.invitation, name="invitation"),
    path("t/<tenant_slug:tenant>/", include(tenant_patterns)),
]
