"""Form pieces for typed flags, shared by the admin and the portal: row editors, typed values, the evaluate form.

Everything here parses and explains input; `tenants.services.flags` and `tenants.flagrules`
decide what is valid. The row editor works without JavaScript (it renders blank rows to
fill); `tenants/flags.js` only adds and removes rows and shows totals.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from agentapi_admin.admin_base import JSON_MAX_DEPTH, BoundedJSONField, _deeper_than
from tenants import flagrules

#: Row indices above this are ignored: a bound on the work one POST can ask for.
MAX_ROW_INDEX = 200
MAX_CONTEXT_BYTES = 16_384
MAX_SUBJECT = 256
_PATH = re.compile(r"^(?P<field>[a-z_]+)(?:\[(?P<index>\d+)\])?(?:\.(?P<rest>.+))?$")


@dataclass(frozen=True)
class Column:
    """One column of a row editor: a text input, a number, or a select with `choices`."""

    name: str
    label: str
    kind: str = "text"  # "text" | "number" | "select" | "lines" (a small textarea, one item per line)
    choices: tuple = ()
    size: int = 20
    suggestions: tuple = ()  # offered in a <datalist>; any text is accepted


class RowsWidget(forms.Widget):
    """Rows of inputs named `<name>-<i>-<column>`, plus `extra` blank rows; reads them back in order."""

    use_fieldset = True  # many inputs: a fieldset and legend name the group, no single label fits

    def __init__(self, columns: list[Column], *, extra: int = 2, total: str = "", attrs=None):
        super().__init__(attrs)
        self.columns = columns
        self.extra = extra
        self.total = total  # a column whose numbers the script adds up ("weight")
        self.error_rows: set[int] = set()

    def __deepcopy__(self, memo):
        copied = super().__deepcopy__(memo)
        copied.columns = list(self.columns)
        copied.error_rows = set()
        return copied

    def value_from_datadict(self, data, files, name):
        found: dict[int, dict] = {}
        pattern = re.compile(rf"^{re.escape(name)}-(\d{{1,3}})-([a-z_]+)$")
        for key in data:
            match = pattern.match(key)
            if match and int(match.group(1)) <= MAX_ROW_INDEX:
                found.setdefault(int(match.group(1)), {})[match.group(2)] = data.get(key, "")
        rows = []
        for index in sorted(found):
            # A column missing from the POST reads as left at its default, so a stray name adds no row.
            row = {c.name: str(found[index].get(c.name, self._blank(c))).strip() for c in self.columns}
            if any(row[c.name] != self._blank(c) for c in self.columns):
                rows.append(row)
        return rows

    def value_omitted_from_data(self, data, files, name):
        return False

    @staticmethod
    def _blank(column: Column) -> str:
        return str(column.choices[0][0]) if column.kind == "select" and column.choices else ""

    def _cell(self, name: str, index: int, column: Column, value: str) -> str:
        field = f"{name}-{index}-{column.name}"
        # aria-label rather than a hidden <label>: an absolutely placed label in a cell scrolled out of view
        # would widen the page on a phone.
        label = f"Row {index + 1} {column.label}"
        if column.kind == "lines":
            control = format_html(
                '<textarea name="{}" id="id_{}" aria-label="{}" rows="2" cols="{}" data-col="{}">{}</textarea>',
                field,
                field,
                label,
                column.size,
                column.name,
                value,
            )
        elif column.kind == "select":
            options = format_html_join(
                "",
                '<option value="{}"{}>{}</option>',
                ((key, " selected" if str(key) == value else "", text) for key, text in column.choices),
            )
            control = format_html(
                '<select name="{}" id="id_{}" aria-label="{}" data-col="{}">{}</select>',
                field,
                field,
                label,
                column.name,
                options,
            )
        else:
            control = format_html(
                '<input type="{}" name="{}" id="id_{}" aria-label="{}" value="{}" size="{}" data-col="{}"{}{}>',
                "number" if column.kind == "number" else "text",
                field,
                field,
                label,
                value,
                column.size,
                column.name,
                format_html(' list="{}-{}-list"', name, column.name) if column.suggestions else "",
                mark_safe(' min="0" max="100" step="1"') if column.kind == "number" else "",
            )
        return format_html('<td class="col-{}">{}</td>', column.name, control)

    def render(self, name, value, attrs=None, renderer=None):
        rows = list(value or []) if isinstance(value, list) else []
        rows += [{}] * self.extra
        head = format_html_join("", '<th scope="col">{}</th>', ((c.label,) for c in self.columns))
        body = format_html_join(
            "",
            '<tr class="row-editor-row{}" data-index="{}"><th scope="row" class="row-number">{}</th>{}</tr>',
            (
                (
                    " row-error" if index in self.error_rows else "",
                    index,
                    index + 1,
                    format_html_join(
                        "",
                        "{}",
                        ((self._cell(name, index, c, str(row.get(c.name, "") or "")),) for c in self.columns),
                    ),
                )
                for index, row in enumerate(rows)
            ),
        )
        total = (
            format_html(
                '<p class="row-editor-total" data-total-of="{}" hidden>Total: <output>0</output> %</p>', self.total
            )
            if self.total
            else ""
        )
        datalists = format_html_join(
            "",
            '<datalist id="{}-{}-list">{}</datalist>',
            (
                (name, c.name, format_html_join("", '<option value="{}">', ((s,) for s in c.suggestions)))
                for c in self.columns
                if c.suggestions
            ),
        )
        return format_html(
            '<div class="row-editor" data-rows="{}" id="rows_{}">'
            '<table><thead><tr><th scope="col">#</th>{}</tr></thead><tbody>{}</tbody></table>{}{}'
            '<p class="help">Fill a blank row to add one; empty a row to remove it.</p></div>',
            name,
            name,
            head,
            body,
            total,
            datalists,
        )


class RowsField(forms.Field):
    """A list of rows (dicts of strings) from a RowsWidget; the form turns them into values."""

    def __init__(self, columns: list[Column], *, extra: int = 2, total: str = "", **kwargs):
        kwargs.setdefault("required", False)
        super().__init__(widget=RowsWidget(columns, extra=extra, total=total), **kwargs)

    def to_python(self, value):
        return value if isinstance(value, list) else []

    def has_changed(self, initial, data):
        return (initial or []) != (data or [])


def typed_text(kind: str, value: Any) -> str:
    """Return a stored value as the text an input shows for a flag of `kind`."""
    if value is None:
        return ""
    if kind == "string" and isinstance(value, str):
        return value
    if kind == "number" and isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return json.dumps(value)


def typed_value(kind: str, text: str) -> Any:
    """Return the value `text` means for a flag of `kind`; raise ValidationError saying what was expected."""
    if kind == "string":
        return text
    if kind == "number":
        try:
            number = float(text)
        except ValueError:
            raise ValidationError(f"{text!r} is not a number.") from None
        return int(number) if number.is_integer() and "." not in text and "e" not in text.lower() else number
    if kind == "json":
        return bounded_json(text)
    raise ValidationError("a boolean flag has no value here: use on/off.")


def bounded_json(text: str) -> Any:
    """Parse JSON nested at most JSON_MAX_DEPTH levels; raise ValidationError saying what is wrong."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise ValidationError(BoundedJSONField.default_error_messages["too_deep"]) from None
    except json.JSONDecodeError as exc:
        raise ValidationError(f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno}).") from None
    if _deeper_than(value, JSON_MAX_DEPTH):
        raise ValidationError(BoundedJSONField.default_error_messages["too_deep"])
    return value


def field_error(path: str | None, message: str, fields) -> tuple[str | None, str]:
    """Return (form field, message) for a service error whose field is a path such as "variants[1].weight".

    The row number and the part of the row are put in the message, since the form field is the whole list.
    """
    match = _PATH.match(path or "")
    if match is None or match.group("field") not in fields:
        return None, message
    name, index, rest = match.group("field"), match.group("index"), match.group("rest")
    prefix = f"{path}: "
    text = message[len(prefix) :] if message.startswith(prefix) else message
    if index is not None:
        where = f"Row {int(index) + 1}" + (f", {rest}" if rest else "")
        return name, f"{where}: {text}"
    return name, text


def add_service_errors(form: forms.BaseForm, errors, *, fallback: str | None = None) -> None:
    """Put each TenantsError on the form field its path names (else the form), marking the rows in error."""
    for exc in errors:
        name, message = field_error(exc.field, exc.message, form.fields)
        if name is None and fallback in form.fields:
            name = fallback
        if name is not None and name in form.errors and message in form.errors[name]:
            continue
        form.add_error(name, message)
        match = _PATH.match(exc.field or "")
        widget = form.fields[name].widget if name in form.fields else None
        if match and match.group("index") is not None and isinstance(widget, RowsWidget):
            widget.error_rows.add(int(match.group("index")))


def attribute_suggestions() -> list[str]:
    """Return the attributes a condition may test, as suggestions for the editor (from tenants.flagrules)."""
    return [
        "subject",
        *flagrules.TENANT_ATTRIBUTES,
        f"{flagrules.TENANT_SETTINGS_PREFIX}<name>",
        f"{flagrules.CONTEXT_PREFIX}<name>",
    ]


# ------------------------------------------------------------------------------------------ evaluate
class EvaluateForm(forms.Form):
    """A subject and an evaluation context to evaluate every flag of a tenant with (read-only)."""

    subject = forms.CharField(
        required=False,
        max_length=MAX_SUBJECT,
        help_text="Who is asking (a user id, an agent id). Empty: the tenant itself.",
    )
    context = RowsField(
        [Column("name", "Name", size=24), Column("value", "Value", size=32)],
        extra=3,
        label="Context",
        help_text="Attributes that context.<name> conditions test; values are text.",
    )
    context_json = forms.CharField(
        required=False,
        label="Context as JSON",
        widget=forms.Textarea(attrs={"rows": 4, "cols": 60, "spellcheck": "false"}),
        help_text='Or a JSON object for typed values, e.g. {"app_version": "2.1.0", "seats": 12}. '
        "Rows and JSON are merged; JSON wins on a name in both.",
    )

    def clean_context(self) -> dict:
        rows = self.cleaned_data["context"]
        context, bad = {}, []
        for index, row in enumerate(rows, start=1):
            if not re.match(flagrules.CONTEXT_NAME_PATTERN, row["name"]):
                bad.append(f"Row {index}: a name is 1-64 characters a-z, A-Z, 0-9, '_', '.', '-'.")
                continue
            context[row["name"]] = row["value"]
        if bad:
            raise ValidationError(bad)
        return context

    def clean_context_json(self) -> dict:
        text = self.cleaned_data["context_json"].strip()
        if not text:
            return {}
        if len(text.encode()) > MAX_CONTEXT_BYTES:
            raise ValidationError(f"At most {MAX_CONTEXT_BYTES} bytes of JSON.")
        value = bounded_json(text)
        if not isinstance(value, dict):
            raise ValidationError('A JSON object, e.g. {"plan_tier": "gold"}.')
        bad = sorted(name for name in value if not re.match(flagrules.CONTEXT_NAME_PATTERN, name))
        if bad:
            raise ValidationError(
                f"Not a context name: {bad[0][:64]!r} (1-64 characters a-z, A-Z, 0-9, '_', '.', '-')."
            )
        return value

    def evaluation_input(self) -> tuple[str | None, dict]:
        """Return (subject or None for the tenant itself, context) from a valid form."""
        subject = self.cleaned_data.get("subject") or None
        return subject, {**self.cleaned_data.get("context", {}), **self.cleaned_data.get("context_json", {})}
