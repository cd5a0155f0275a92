"""Run in a subprocess: exercise every admin, ops, portal and API page with known secrets, print the bodies.

The parent test starts a password-protected redis-server, passes the secrets in the
environment, and greps this process's stdout (every response body and header) and
stderr (every log record, DEBUG level) for them.
"""

import json
import logging
import os
import sys

import django

django.setup()
logging.basicConfig(level=logging.DEBUG, stream=sys.stderr, force=True)

from django.contrib import admin  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402
from django.urls import reverse  # noqa: E402

call_command("migrate", verbosity=0)
from tenants.services.tenants import tenant_set_upstream_credentials  # noqa: E402
from tests.portal.conftest import PASSWORD, build_world  # noqa: E402

world = build_world()
tenant_set_upstream_credentials(tenant=world.a, secret=os.environ["UPSTREAM_SECRET"], actor=None)
# An upstream that refuses connections: probe_upstreams then goes through the tenant's shared breaker.
world.a.upstream_url = "http://127.0.0.1:9"
world.a.save(update_fields=["upstream_url"])
root = get_user_model().objects.create_superuser("root", "root@example.test", PASSWORD)

admin_client, owner_client, api = Client(), Client(), Client()
seen = []


def show(label, response):
    seen.append(
        f"== {label} {response.status_code}\n{dict(response.items())}\n{response.content.decode(errors='replace')}"
    )


show("admin login", admin_client.post("/admin/login/", {"username": "root", "password": PASSWORD}))
show("portal login", owner_client.post("/portal/login/", {"username": world.a_owner.username, "password": PASSWORD}))
show("bad login", Client().post("/admin/login/", {"username": "root", "password": "wrong"}))
urls = ["/admin/", "/readyz", "/healthz"]
for page in ("redis", "ratelimits", "breakers", "sessions"):
    urls += [f"/admin/ops/{page}/", f"/admin/ops/{page}/?format=json"]
for model in admin.site._registry:
    if not model._meta.concrete_model._meta.managed:
        continue
    info = model._meta.app_label, model._meta.model_name
    urls.append(reverse("admin:{}_{}_changelist".format(*info)))
    for obj in model.objects.order_by("pk")[:3]:
        urls.append(reverse("admin:{}_{}_change".format(*info), args=[obj.pk]))
for url in urls:
    show(url, admin_client.get(url))
for name in ("tenant_home", "features", "keys", "members", "usage"):
    show(name, owner_client.get(reverse(f"portal:{name}", kwargs={"tenant": world.a.slug})))
show(
    "key issue",
    owner_client.post(
        reverse("portal:keys", kwargs={"tenant": world.a.slug}), {"name": "ci", "scopes": ["config:read"]}
    ),
)
show("bootstrap", api.get("/api/v1/bootstrap", HTTP_AUTHORIZATION=f"Bearer {world.a_secret}"))
show("flag", api.get(f"/api/v1/flags/{world.editable.key}", HTTP_AUTHORIZATION=f"Bearer {world.a_secret}"))
show("openapi", api.get("/api/v1/openapi.json"))
for command in (
    ["flush_usage", "--json"],
    ["probe_upstreams", "--all", "--json"],
    ["redis_health", "--json"],
    ["rotate_encryption_key", "--dry-run", "--json"],
    ["cleanup_sessions", "--dry-run", "--json"],
):
    try:
        call_command(*command)
    except Exception as exc:  # a command's failure is output too: it must not name a secret either
        seen.append(f"== {command} raised {exc!r}")
print(json.dumps({"secret_issued_page": "key issue", "count": len(seen)}))
print("\n".join(seen))
