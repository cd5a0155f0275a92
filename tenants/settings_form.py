"""Form fields for `Tenant.settings`, built from the schema in `tenants/settings_schema.py`.

One Django field per schema entry, named `setting_<name>`: a choice for a `Literal`,
a bounded integer for an `int` with `ge`/`le`, a URL, one line per item for a list and
one `key=value` line per entry for a dict. An empty field means "not set": the
schema's default applies and the key is not stored.
"""

from __future__ import annotations

import types
import typing
from typing import TYPE_CHECKING, Any

from annotated_types import Ge, Le
from django import forms
from django.core.exceptions import ImproperlyConfigured, ValidationError
from pydantic import HttpUrl

from tenants.settings_schema import TenantSettings

PREFIX = "setting_"


def _lines(value: str | None) -> list[str]:
    return [line.strip() for line in (value or "").splitlines() if line.strip()]


class _TextStructure(forms.CharField):
    """A text box holding a list or a dict: changed only if the parsed value differs."""

    widget = forms.Textarea(attrs={"rows": 3, "cols": 60})

    def has_changed(self, initial, data):
        try:
            return (initial or self.to_python("")) != self.to_python(data)
        except ValidationError:
            return True


class LinesField(_TextStructure):
    """One item per line; blank lines are ignored."""

    def to_python(self, value):
        return _lines(super().to_python(value))

    def prepare_value(self, value):
        return "\n".join(value) if isinstance(value, list) else value


class PairsField(_TextStructure):
    """One `key=value` per line."""

    def to_python(self, value):
        pairs, bad = {}, []
        for number, line in enumerate(_lines(super().to_python(value)), start=1):
            key, sep, val = line.partition("=")
            if not sep or not key.strip():
                bad.append(number)
                continue
            pairs[key.strip()] = val.strip()
        if bad:
            raise ValidationError(f"Write one key=value per line; line {', '.join(map(str, bad))} has no key=value.")
        return pairs

    def prepare_value(self, value):
        return "\n".join(f"{k}={v}" for k, v in value.items()) if isinstance(value, dict) else value


def _bounds(metadata) -> dict[str, Any]:
    bounds: dict[str, Any] = {}
    for item in metadata:
        if isinstance(item, Ge):
            bounds["min_value"] = item.ge
        elif isinstance(item, Le):
            bounds["max_value"] = item.le
    return bounds


def _field_for(name: str, info) -> forms.Field:
    annotation, origin = info.annotation, typing.get_origin(info.annotation)
    default = info.get_default(call_default_factory=True)
    shown = default if default not in (None, [], {}) else "none"
    common: dict[str, Any] = {
        "required": False,
        "label": name.replace("_", " ").capitalize(),
        "help_text": f"Empty: {shown}.",
    }
    if origin is typing.Literal:
        choices = [("", f"(default: {default})"), *((value, value) for value in typing.get_args(annotation))]
        return forms.ChoiceField(choices=choices, **{**common, "help_text": ""})
    if annotation is int:
        return forms.IntegerField(**_bounds(info.metadata), **common)
    if annotation is HttpUrl or (origin in (typing.Union, types.UnionType) and HttpUrl in typing.get_args(annotation)):
        return forms.URLField(assume_scheme="https", **common)
    if origin is list:
        return LinesField(**{**common, "help_text": "One per line. " + common["help_text"]})
    if origin is dict:
        return PairsField(**{**common, "help_text": "One key=value per line. " + common["help_text"]})
    raise ImproperlyConfigured(
        f"tenants.settings_schema.TenantSettings.{name} has type {annotation!r}, which has no form field: "
        "add one to tenants/settings_form.py"
    )


def settings_form_fields() -> dict[str, forms.Field]:
    """Return {"setting_<name>": form field} for every schema entry, in the schema's order."""
    return {PREFIX + name: _field_for(name, info) for name, info in TenantSettings.model_fields.items()}


def settings_from_fields(stored: dict, cleaned: dict, skip: set[str]) -> dict:
    """Apply the typed fields to the stored settings: a value sets its key, an empty field removes it."""
    result = dict(stored or {})
    for name in TenantSettings.model_fields:
        if PREFIX + name in skip:
            continue
        value = cleaned.get(PREFIX + name)
        if value in (None, "", [], {}):
            result.pop(name, None)
        else:
            result[name] = value
    return result


# A form class holding the typed fields, to mix into a ModelForm: the admin only accepts
# fieldset names that the form class declares.
if TYPE_CHECKING:

    class SettingsFields(forms.Form):
        """The form class built below at run time, as the type checker sees it."""

else:
    SettingsFields = type("SettingsFields", (forms.Form,), settings_form_fields())
