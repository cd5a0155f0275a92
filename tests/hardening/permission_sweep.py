"""Who may do what in the admin, derived from the admin registry and the URL resolver.

The sweep and the permission table in docs/security.md both come from here, so a new
ModelAdmin, action, admin URL or ops page is covered (and documented) without editing
a list; a URL the sweep cannot classify fails the sweep until it is taught.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from dataclasses import dataclass, field

from django.contrib import admin
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import AnonymousUser
from django.test import RequestFactory
from django.urls import URLPattern, URLResolver, get_resolver

from console.admin import OpsPageAdmin
from console.models import OPERATE_PERMISSION
from tests.portal.sweep import world_state

ROLES = ("anonymous", "non-staff", "view-only staff", "change staff", "superuser")
STAFF_ROLES = ROLES[2:]
METHODS = ("GET", "POST")
# The ops pages that only read; every other URL under /admin/ops/ is an action needing OPERATE_PERMISSION.
# A new read-only page is added here on purpose; a new action is covered (and must refuse) by default.
OPS_READ_PAGES = {"redis", "ratelimits", "breakers", "sessions"}
STANDARD_PERMISSIONS = ("view", "add", "change", "delete")


@dataclass(frozen=True)
class AdminUrl:
    """One concrete URL of the admin (or its ops pages) and what it is."""

    path: str
    kind: str  # "site:<name>", "model:<suffix>", "ops-page", "ops-action"
    model_admin: object = None
    obj: object = None
    query: dict = field(default_factory=dict, hash=False, compare=False)

    @property
    def label(self) -> str:
        return self.path + ("?" + "&".join(f"{k}={v}" for k, v in self.query.items()) if self.query else "")


def registry() -> list[tuple[type, admin.ModelAdmin]]:
    """Every registered (model, ModelAdmin), in a stable order."""
    return sorted(admin.site._registry.items(), key=lambda pair: pair[0]._meta.label)


def _model_admin_for(url_name: str):
    for model, model_admin in registry():
        prefix = f"{model._meta.app_label}_{model._meta.model_name}_"
        if url_name.startswith(prefix):
            return model_admin, url_name[len(prefix) :]
    return None, None


def _patterns():
    """Yield (namespace, name, route, callback) for every URL pattern under /admin/."""

    def walk(patterns, namespace, route):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, pattern.namespace or namespace, route + str(pattern.pattern))
            elif isinstance(pattern, URLPattern):
                yield namespace, pattern.name, route + str(pattern.pattern), pattern.callback

    for namespace, name, route, callback in walk(get_resolver().url_patterns, "", "/"):
        if route.startswith("/admin/"):
            yield namespace, name, route, callback


def admin_urls(objects: dict) -> list[AdminUrl]:
    """Every admin and ops URL with its kwargs filled from `objects` ({model: instance})."""
    found: dict[str, AdminUrl] = {}
    for namespace, name, route, callback in _patterns():
        if route.endswith("(?P<url>.*)$"):
            continue  # the admin's catch-all: any other path answers 404 (or the login page)
        if namespace == "ops":
            kind = "ops-page" if name in OPS_READ_PAGES else "ops-action"
            found.setdefault(route, AdminUrl(route, kind))
            if kind == "ops-page":
                json_twin = AdminUrl(route, kind, query={"format": "json"})
                found.setdefault(json_twin.label, json_twin)
            continue
        if namespace != "admin" and name in ("admin_login_throttled", "admin_password_change_throttled"):
            continue  # the same paths as admin:login / admin:password_change, listed below
        if name == "app_list":
            for app_label in sorted({model._meta.app_label for model, _ in registry()}):
                path = f"/admin/{app_label}/"
                found.setdefault(path, AdminUrl(path, "site:app_list", query={}, obj=app_label))
            continue
        model_admin = getattr(callback, "model_admin", None)
        suffix = None
        if name:
            by_name, suffix = _model_admin_for(name)
            model_admin = model_admin or by_name
        if model_admin is None:
            _site_url(found, name, route, objects)
            continue
        suffix = suffix or "object"  # the unnamed <object_id>/ redirect to the change page
        obj = sweep_object(model_admin.model, objects)
        path = _fill(route, obj, model_admin)
        found.setdefault(path, AdminUrl(path, f"model:{suffix}", model_admin=model_admin, obj=obj))
    return sorted(found.values(), key=lambda url: (url.path == "/admin/logout/", url.label))


def sweep_object(model, objects: dict):
    """The row the sweep uses for `model`: the one chosen in `objects`, else any existing row."""
    if model in objects:
        return objects[model]
    return None if isinstance(admin.site._registry[model], OpsPageAdmin) else model._default_manager.first()


def _site_url(found, name, route, objects) -> None:
    from django.contrib.contenttypes.models import ContentType

    from tenants.models import Membership, Tenant

    if name == "view_on_site":
        tenant = objects[Tenant]
        path = f"/admin/r/{ContentType.objects.get_for_model(Tenant).pk}/{tenant.pk}/"
        found.setdefault(path, AdminUrl(path, "site:view_on_site"))
        return
    query = {}
    if name == "autocomplete":
        query = {"app_label": "tenants", "model_name": Membership._meta.model_name, "field_name": "user", "term": "o"}
    assert "<" not in route and "(" not in route, f"teach the permission sweep how to fill {route} ({name})"
    found.setdefault(route, AdminUrl(route, f"site:{name}", query=query))


def _fill(route: str, obj, model_admin) -> str:
    def value(match):
        assert obj is not None, f"the sweep needs a {model_admin.model._meta.label} row for {route}"
        return str(obj.pk)

    path = re.sub(r"<(?:\w+:)?(object_id|id)>", value, route)
    assert "<" not in path, f"teach the permission sweep how to fill {route}"
    return path


# --------------------------------------------------------------------------- expectations
def role_request(user):
    request = RequestFactory().get("/admin/")
    request.user = user or AnonymousUser()
    return request


def is_staff(user) -> bool:
    return user is not None and user.is_active and user.is_staff


def url_allowed(url: AdminUrl, method: str, user) -> bool:
    """Return True if `user` may use `url` with `method` (as the admin registry and the ops rules declare)."""
    if url.kind == "site:login":
        return True
    if not is_staff(user):
        return False
    request = role_request(user)
    if url.kind == "ops-page":
        return True
    if url.kind == "ops-action":
        return user.has_perm(OPERATE_PERMISSION)
    if url.kind == "site:app_list":
        return any(ma.has_module_permission(request) for m, ma in registry() if m._meta.app_label == url.obj)
    if url.kind == "site:autocomplete":
        from django.contrib.auth import get_user_model

        return admin.site._registry[get_user_model()].has_view_permission(request)
    if url.kind.startswith("site:"):
        return True
    model_admin, suffix, obj = url.model_admin, url.kind.split(":", 1)[1], url.obj
    if isinstance(model_admin, OpsPageAdmin):
        return model_admin.has_view_permission(request)
    if suffix == "object":
        # `<id>/` only redirects to the change page (Django checks no permission there); that page checks.
        return model_admin.has_view_or_change_permission(request, None)
    if suffix in ("evaluate", "stale", "tenants"):
        # The flags' read-only pages (the evaluate tool, the stale report, the per-flag tenants page;
        # POST answers 405): whoever may see flags may use them.
        return model_admin.has_view_or_change_permission(request, obj if suffix == "tenants" else None)
    if suffix in ("environments", "promote"):
        # A tenant's environment pages: whoever may see the tenant reads them; acting needs its change permission.
        if method == "GET":
            return model_admin.has_view_or_change_permission(request, obj)
        return model_admin.has_change_permission(request, obj)
    if suffix in ("changelist", "history") or (suffix == "change" and method == "GET"):
        return model_admin.has_view_or_change_permission(request, None if suffix == "changelist" else obj)
    if suffix == "add":
        return model_admin.has_add_permission(request)
    if suffix in ("change", "password_change"):
        return model_admin.has_change_permission(request, obj)
    if suffix == "delete":
        return model_admin.has_delete_permission(request, obj)
    raise AssertionError(f"teach the permission sweep what {url.path} ({url.kind}) needs")


def actions_of(model_admin) -> list[tuple[str, object]]:
    """Every action the ModelAdmin has (whoever may run it): [(name, function)]."""
    if model_admin.actions is None:  # Django offers none at all then, not even the site's
        return []
    return [(name, func) for func, name, _description in model_admin._get_base_actions()]


def action_allowed(model_admin, func, user) -> bool:
    if not is_staff(user):
        return False
    request = role_request(user)
    if not model_admin.has_view_or_change_permission(request):
        return False
    declared = getattr(func, "allowed_permissions", ())
    return all(getattr(model_admin, f"has_{p}_permission")(request) for p in declared)


SQL_WRITE = re.compile(r"^\s*(INSERT|UPDATE|DELETE|REPLACE|CREATE|DROP|ALTER|TRUNCATE)\b", re.I)


@contextmanager
def writes_recorded():
    """Record the SQL writes and the Redis write count of a block: yields a dict filled on exit.

    Cheaper than comparing snapshots and stricter: a write that stores the same value counts too.
    """
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from resilience.connection import get_redis

    client = get_redis()
    found: dict = {}
    dirty = client.info("persistence")["rdb_changes_since_last_save"]
    with CaptureQueriesContext(connection) as queries:
        yield found
    found["sql"] = [q["sql"] for q in queries.captured_queries if SQL_WRITE.match(q["sql"])]
    found["redis_writes"] = client.info("persistence")["rdb_changes_since_last_save"] - dirty


def full_state():
    """Database rows (the project's apps, auth, the admin log) and every Redis key, comparable."""
    db, keys = world_state()
    db["admin.LogEntry"] = sorted(map(repr, LogEntry.objects.order_by("pk").values()))
    return db, keys


# ------------------------------------------------------------------------------- the table
def permission_label(model_admin, perm: str) -> str:
    opts = model_admin.opts
    if perm in STANDARD_PERMISSIONS:
        return f"`{opts.app_label}.{perm}_{opts.model_name}`"
    return f"`{opts.app_label}.{perm}`"


def permission_rows(users: dict) -> list[tuple[str, str, list[bool]]]:
    """Return [(what, permission needed, [allowed per role])] for every admin capability and ops page."""
    rows = []
    superuser = users["superuser"]
    for model, model_admin in registry():
        if isinstance(model_admin, OpsPageAdmin):
            continue
        name = str(model._meta.verbose_name_plural).capitalize()
        su = role_request(superuser)
        capabilities = [
            ("list and view", model_admin.has_view_or_change_permission, "view", "view or change"),
            ("add", lambda r, ma=model_admin: ma.has_add_permission(r), "add", None),
            ("change", model_admin.has_change_permission, "change", None),
            ("delete", model_admin.has_delete_permission, "delete", None),
        ]
        for what, check, perm, _ in capabilities:
            if not check(su):
                needed = "nobody"
            elif perm == "view":
                needed = f"{permission_label(model_admin, 'view')} or {permission_label(model_admin, 'change')}"
            else:
                needed = permission_label(model_admin, perm)
            allowed = [is_staff(users[role]) and bool(check(role_request(users[role]))) for role in ROLES]
            rows.append((f"{name}: {what}", needed, allowed))
        pages = [("evaluate_view", "evaluate tool"), ("stale_view", "stale report"), ("tenants_view", "tenants page")]
        for view, what in pages:
            if not hasattr(model_admin, view):
                continue
            needed = f"{permission_label(model_admin, 'view')} or {permission_label(model_admin, 'change')}"
            allowed = [
                is_staff(users[r]) and model_admin.has_view_or_change_permission(role_request(users[r])) for r in ROLES
            ]
            rows.append((f"{name}: {what} (read-only)", needed, allowed))
        for action_name, func in actions_of(model_admin):
            perms = getattr(func, "allowed_permissions", ())
            needed = " and ".join(permission_label(model_admin, p) for p in perms) or "(none declared)"
            if not action_allowed(model_admin, func, superuser):
                needed = "nobody"
            allowed = [action_allowed(model_admin, func, users[role]) for role in ROLES]
            rows.append((f"{name}: action `{action_name}`", needed, allowed))
    for namespace, name, route, _callback in _patterns():
        if namespace != "ops":
            continue
        read = name in OPS_READ_PAGES
        needed = "active staff" if read else f"`{OPERATE_PERMISSION}`"
        kind = "ops-page" if read else "ops-action"
        allowed = [url_allowed(AdminUrl(route, kind), "POST" if not read else "GET", users[role]) for role in ROLES]
        rows.append((f"Ops: `{route}`" + ("" if read else " (POST acts)"), needed, allowed))
    return rows


def permission_table(users: dict) -> str:
    header = "| page or action | permission needed | " + " | ".join(ROLES) + " |"
    lines = [header, "|" + "---|" * (2 + len(ROLES))]
    for what, needed, allowed in permission_rows(users):
        lines.append(f"| {what} | {needed} | " + " | ".join("yes" if ok else "—" for ok in allowed) + " |")
    return "\n".join(lines)
