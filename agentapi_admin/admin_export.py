"""CSV and JSON export actions for any changelist, streamed row by row.

The admin actions hand over the selected queryset (every matching row with "select
all"); rows are read with `values_list(...).iterator()` in chunks, so memory stays flat
and the response starts at once whatever the size of the set. Each app names its
columns with an `Export` (the audit log in `audit.admin`, daily usage in `tenants.admin`).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from django.contrib import admin
from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from django.utils import timezone

from agentapi_admin.admin_base import ModelAdminMixin

CHUNK = 2000
# A cell starting with one of these is a formula to a spreadsheet: prefix it so it stays text.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Export:
    """What one export writes: a file name stem and its columns as (name, ORM field) pairs."""

    stem: str
    columns: tuple[tuple[str, str], ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.columns)


def _plain(value):
    if isinstance(value, dt.datetime):
        return timezone.localtime(value, dt.UTC).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _records(queryset: QuerySet, spec: Export) -> Iterator[dict]:
    fields = [field for _, field in spec.columns]
    for row in queryset.values_list(*fields).iterator(chunk_size=CHUNK):
        yield {name: _plain(value) for name, value in zip(spec.names, row, strict=True)}


class _Echo:
    """A file-like object whose write returns the line, for csv.writer inside a generator."""

    def write(self, value: str) -> str:
        return value


def _csv_cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def _csv_lines(records: Iterable[dict], columns: tuple[str, ...]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(columns)
    for record in records:
        yield writer.writerow([_csv_cell(record[c]) for c in columns])


def _json_chunks(records: Iterable[dict]) -> Iterator[str]:
    yield "["
    for index, record in enumerate(records):
        yield ("," if index else "") + "\n" + json.dumps(record, ensure_ascii=False, sort_keys=True)
    yield "\n]\n"


def export_response(queryset: QuerySet, spec: Export, fmt: str) -> StreamingHttpResponse:
    """Stream `queryset` as CSV or JSON (`fmt` is "csv" or "json") as an attachment."""
    records = _records(queryset, spec)
    if fmt == "csv":
        body, content_type = _csv_lines(records, spec.names), "text/csv; charset=utf-8"
    elif fmt == "json":
        body, content_type = _json_chunks(records), "application/json"
    else:
        raise ValueError(f"unknown export format {fmt!r}: use 'csv' or 'json'")
    stamp = timezone.now().astimezone(dt.UTC).strftime("%Y%m%d-%H%M%S")
    response = StreamingHttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{spec.stem}-{stamp}.{fmt}"'
    response["Cache-Control"] = "no-store"
    return response


class ExportActionsMixin(ModelAdminMixin):
    """CSV and JSON export actions for whoever may view the list; `export` names the columns."""

    export: Export
    actions = ["export_csv", "export_json"]

    @admin.action(description="Export selected %(verbose_name_plural)s as CSV", permissions=["view"])
    def export_csv(self, request, queryset):
        return export_response(queryset, self.export, "csv")

    @admin.action(description="Export selected %(verbose_name_plural)s as JSON", permissions=["view"])
    def export_json(self, request, queryset):
        return export_response(queryset, self.export, "json")
