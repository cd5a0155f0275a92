"""Django admin for webhook endpoints and the delivery log; every write goes through a service."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from agentapi_admin.admin_base import GuardedModelAdmin
from agentapi_admin.client_address import client_ip
from webhooks.exceptions import WebhooksError
from webhooks.models import REDELIVER_PERMISSION, EventType, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from webhooks.selectors import endpoint_breaker_state
from webhooks.services.delivery import body_of, delivery_redeliver
from webhooks.services.endpoints import (
    endpoint_create,
    endpoint_delete,
    endpoint_event_types,
    endpoint_rotate_secret,
    endpoint_update,
    endpoint_url_check,
)


class EndpointForm(forms.ModelForm):
    event_types = forms.MultipleChoiceField(choices=EventType.choices, widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = WebhookEndpoint
        fields = ["tenant", "url", "description", "event_types", "enabled"]
        widgets = {"url": forms.URLInput(attrs={"size": 80})}

    def clean_url(self):
        tenant = self.cleaned_data.get("tenant") if "tenant" in self.fields else self.instance.tenant
        try:
            return endpoint_url_check(self.cleaned_data["url"], tenant=tenant)
        except WebhooksError as exc:
            raise ValidationError(exc.message.removeprefix("url: ")) from None

    def clean_event_types(self):
        try:
            return endpoint_event_types(self.cleaned_data["event_types"])
        except WebhooksError as exc:
            raise ValidationError(exc.message.removeprefix("event_types: ")) from None


def _shown_once(request, admin_site, *, what, rows, overlap="") -> TemplateResponse:
    response = TemplateResponse(
        request,
        "admin/webhooks/secret_shown.html",
        {
            **admin_site.each_context(request),
            "title": "Webhook signing secret",
            "what": what,
            "endpoint": rows[0]["endpoint"],
            "secrets": rows,
            "overlap": overlap,
            "back": reverse("admin:webhooks_webhookendpoint_changelist"),
        },
    )
    response["Cache-Control"] = "no-store"
    return response


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(GuardedModelAdmin):
    form = EndpointForm
    list_display = ["url", "scope", "enabled", "subscribed", "breaker_state", "created_at"]
    list_filter = ["enabled", ("tenant", admin.EmptyFieldListFilter), "tenant"]
    search_fields = ["url", "description", "tenant__slug"]
    actions = ["rotate_secret"]

    def get_fields(self, request, obj=None):
        fields = ["tenant", "url", "description", "event_types", "enabled"]
        return fields if obj is None else [*fields, "secrets_in_use", "breaker_state", "deliveries"]

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else ["tenant", "secrets_in_use", "breaker_state", "deliveries"]

    @admin.display(description="scope")
    def scope(self, obj):
        return obj.tenant.slug if obj.tenant_id else "platform-wide"

    @admin.display(description="event types")
    def subscribed(self, obj):
        return ", ".join(obj.event_types)

    @admin.display(description="breaker")
    def breaker_state(self, obj):
        return endpoint_breaker_state(obj)

    @admin.display(description="signing secrets")
    def secrets_in_use(self, obj):
        now = timezone.now()
        rows = [
            (s.hint, s.created_at.strftime("%Y-%m-%d %H:%M"), _expiry(s.expires_at, now))
            for s in obj.secrets.exclude(expires_at__lte=now)
        ]
        return format_html("<ul>{}</ul>", format_html_join("", "<li><code>{}…</code> created {}, {}</li>", rows))

    @admin.display(description="delivery log")
    def deliveries(self, obj):
        url = reverse("admin:webhooks_webhookdelivery_changelist") + f"?endpoint__id__exact={obj.pk}"
        pending = obj.deliveries.filter(status=WebhookDelivery.Status.PENDING).count()
        return format_html('<a href="{}">deliveries</a> ({} pending)', url, pending)

    def save_model(self, request, obj, form, change):
        data, ip = form.cleaned_data, client_ip(request)
        if change:
            fields = {name: data[name] for name in form.changed_data if name != "tenant"}
            if fields:
                endpoint_update(endpoint=obj, actor=request.user, ip=ip, **fields)
            return
        created, secret = endpoint_create(
            tenant=data["tenant"],
            url=data["url"],
            description=data["description"],
            event_types=data["event_types"],
            enabled=data["enabled"],
            actor=request.user,
            ip=ip,
        )
        obj.pk, obj._state.adding = created.pk, False
        request._webhook_secret = secret  # shown once by response_add, stored nowhere in clear

    def response_add(self, request, obj, post_url_continue=None):
        secret = getattr(request, "_webhook_secret", None)
        if secret is None:
            return super().response_add(request, obj, post_url_continue)
        return _shown_once(
            request, self.admin_site, what="Endpoint created", rows=[{"endpoint": obj, "secret": secret}]
        )

    def get_deleted_objects(self, objs, request):
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        # The delivery log is part of the endpoint: nobody may delete log rows alone, all go with it.
        perms_needed.discard(str(WebhookDelivery._meta.verbose_name))
        return deleted, counts, perms_needed, protected

    def delete_model(self, request, obj):
        endpoint_delete(endpoint=obj, actor=request.user, ip=client_ip(request))

    def delete_queryset(self, request, queryset):
        for endpoint in queryset:
            endpoint_delete(endpoint=endpoint, actor=request.user, ip=client_ip(request))

    @admin.action(description="Rotate the signing secret of selected endpoints", permissions=["change"])
    def rotate_secret(self, request, queryset):
        rows = [
            {"endpoint": e, "secret": endpoint_rotate_secret(endpoint=e, actor=request.user, ip=client_ip(request))}
            for e in queryset
        ]
        if not rows:
            self.message_user(request, "Select at least one endpoint.", messages.WARNING)
            return None
        overlap = _duration(settings.WEBHOOKS_SECRET_OVERLAP)
        return _shown_once(request, self.admin_site, what="Secret rotated", rows=rows, overlap=overlap)


def _expiry(expires_at, now) -> str:
    if expires_at is None:
        return "current"
    return f"retiring: signs until {expires_at:%Y-%m-%d %H:%M} UTC ({_duration((expires_at - now).total_seconds())})"


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:g} h"
    return f"{seconds:g} s"


class AttemptInline(admin.TabularInline):
    model = WebhookAttempt
    fields = ("started_at", "succeeded", "status_code", "latency_ms", "error", "response_excerpt")
    readonly_fields = fields  # one tuple for both: a list would not fit readonly_fields' type
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(GuardedModelAdmin):
    list_display = [
        "id",
        "created_at",
        "endpoint",
        "event_type",
        "status",
        "attempts",
        "last_status_code",
        "last_latency_ms",
        "next_attempt_at",
        "manual",
    ]
    list_filter = ["status", "event__type", "manual", "endpoint"]
    search_fields = ["event__id", "endpoint__url", "endpoint__tenant__slug"]
    list_select_related = ["endpoint", "endpoint__tenant", "event"]
    date_hierarchy = "created_at"
    fields = (
        "endpoint",
        "event_id",
        "event_type",
        "status",
        "manual",
        "attempts",
        "created_at",
        "next_attempt_at",
        "last_attempt_at",
        "last_status_code",
        "last_latency_ms",
        "last_error",
        "last_response_excerpt",
        "delivered_at",
        "body",
    )
    readonly_fields = fields  # one tuple for both: a list would not fit readonly_fields' type
    inlines = [AttemptInline]
    actions = ["redeliver"]

    @admin.display(description="event type")
    def event_type(self, obj):
        return obj.event.type

    @admin.display(description="body sent")
    def body(self, obj):
        return format_html("<pre style='white-space:pre-wrap'>{}</pre>", body_of(obj.event.payload).decode())

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_redeliver_permission(self, request):
        return request.user.has_perm(REDELIVER_PERMISSION)

    @admin.action(
        description="Redeliver selected deliveries (queued behind what is pending)", permissions=["redeliver"]
    )
    def redeliver(self, request, queryset):
        again = [
            delivery_redeliver(delivery=d, actor=request.user, ip=client_ip(request))
            for d in queryset.select_related("endpoint__tenant")
        ]
        self.message_user(request, f"{len(again)} deliveries queued again; the couriers send them within seconds.")
