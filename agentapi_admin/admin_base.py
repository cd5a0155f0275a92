"""The base every ModelAdmin of the project extends: actions run only for who may, bad input is a message.

Django offers an `@admin.action` without `permissions=` to anyone who can see the
changelist, and lets a few hostile query strings and selections reach the database
as exceptions (500s). `GuardedModelAdmin` closes both:

- a POSTed action that exists but is not offered to the user (a missing
  permission) answers 403 instead of being silently ignored or run;
- selected ids that are not valid primary keys are an error message, not a 500;
- date-hierarchy values Python's `datetime` cannot hold are the admin's own
  "invalid lookup" redirect (`?e=1`), not an `OverflowError`;
- every model `JSONField` gets `BoundedJSONField`, so absurdly nested input is a
  form error on that field instead of a `RecursionError`.
"""

from __future__ import annotations

from datetime import UTC
from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models
from django.forms.fields import InvalidJSONInput
from django.http import HttpResponseRedirect
from django.utils import timezone
from django.utils.html import format_html

if TYPE_CHECKING:
    # A mixin for ModelAdmin classes: the type checker sees the ModelAdmin it is combined with.
    ModelAdminMixin = admin.ModelAdmin[Any]
else:
    ModelAdminMixin = object

JSON_MAX_DEPTH = 32


class BoundedJSONField(forms.JSONField):
    """A JSON form field that refuses input nested deeper than JSON_MAX_DEPTH, naming the limit."""

    default_error_messages = {"too_deep": f"JSON nested too deeply: at most {JSON_MAX_DEPTH} levels are accepted."}

    def to_python(self, value):
        try:
            converted = super().to_python(value)
        except RecursionError:
            raise ValidationError(self.error_messages["too_deep"], code="too_deep") from None
        if _deeper_than(converted, JSON_MAX_DEPTH):
            raise ValidationError(self.error_messages["too_deep"], code="too_deep")
        return converted

    def bound_data(self, data, initial):
        # The form re-renders what was typed; a structure too deep to serialise again is shown as typed.
        try:
            bound = super().bound_data(data, initial)
        except RecursionError:
            return InvalidJSONInput(data)
        if not isinstance(bound, InvalidJSONInput) and _deeper_than(bound, JSON_MAX_DEPTH):
            return InvalidJSONInput(data)
        return bound


def _deeper_than(value, limit: int) -> bool:
    """Return True if `value` nests more than `limit` containers deep (iteratively: no recursion)."""
    level, depth = [value], 0
    while True:
        containers = [item for item in level if isinstance(item, (dict, list))]
        if not containers:
            return False
        depth += 1
        if depth > limit:
            return True
        level = [child for item in containers for child in (item.values() if isinstance(item, dict) else item)]


class GuardedChangeList(ChangeList):
    """A changelist whose date hierarchy turns out-of-range values into the admin's invalid-lookup redirect."""

    def get_filters(self, request):
        try:
            return super().get_filters(request)
        except (OverflowError, ValueError) as exc:  # datetime(99999999999, 1, 1), year 9999 + 1, ...
            raise IncorrectLookupParameters(exc) from exc


class GuardedModelAdmin(admin.ModelAdmin):
    """A ModelAdmin whose actions need their declared permissions and whose bad input is never a 500."""

    formfield_overrides = {models.JSONField: {"form_class": BoundedJSONField}}

    def get_changelist(self, request, **kwargs):
        return GuardedChangeList

    def changelist_view(self, request, extra_context=None):
        if request.method == "POST" and "action" in request.POST:
            self.refuse_unoffered_action(request)
        return super().changelist_view(request, extra_context)

    def refuse_unoffered_action(self, request) -> None:
        """Raise PermissionDenied if the POST names an action this user is not offered."""
        # _get_base_actions is private ModelAdmin API, so django-stubs leaves it out.
        known = {name for _func, name, _description in self._get_base_actions()}  # type: ignore[attr-defined]
        refused = (set(request.POST.getlist("action")) & known) - set(self.get_actions(request))
        if refused:
            raise PermissionDenied(f"You may not run {', '.join(sorted(refused))} on {self.opts.verbose_name_plural}.")

    def response_action(self, request, queryset):
        bad = self.invalid_selection(request)
        if bad:
            shown = ", ".join(repr(value[:40]) for value in bad[:5])
            self.message_user(
                request, f"Not a valid {self.opts.pk.verbose_name}: {shown}. Nothing was done.", messages.ERROR
            )
            return HttpResponseRedirect(request.get_full_path())
        return super().response_action(request, queryset)

    def invalid_selection(self, request) -> list[str]:
        """Return the selected values that are not valid primary keys of this model."""
        pk, bad = self.opts.pk, []
        for value in request.POST.getlist(ACTION_CHECKBOX_NAME):
            try:
                pk.run_validators(pk.to_python(value))
            except ValidationError:
                bad.append(value)
        return bad


def adopt_created(target, source) -> None:
    """Make the admin's unsaved instance the row a service created, so inlines and redirects use it."""
    for field in type(source)._meta.concrete_fields:
        setattr(target, field.attname, getattr(source, field.attname))
    target._state.adding = False
    target._state.db = source._state.db


def admin_time(moment):
    """Render a datetime as a compact, sortable UTC stamp ("2026-12-02 06:07") with the full value in <time>."""
    utc = timezone.localtime(moment, UTC)
    return format_html('<time datetime="{}">{}</time>', utc.isoformat(), utc.strftime("%Y-%m-%d %H:%M"))
