"""Behind a TLS-terminating proxy (SECURE_PROXY_SSL_HEADER=true): HSTS, secure cookies, HTTPS redirect.

Production settings in a subprocess (DEBUG=false), as README's "behind a TLS proxy" row says.
"""

from __future__ import annotations

import json
import secrets

from tests.conftest import clean_env, run_python

_PROBE = """
import json, django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from django.contrib.auth import get_user_model
from django.test import Client
get_user_model().objects.create_superuser("root", "r@example.test", "a-long-password-123")
out = {}
plain = Client().get("/admin/login/")
out["plain"] = [plain.status_code, plain.get("Location", "")]
client = Client(HTTP_X_FORWARDED_PROTO="https")
page = client.get("/admin/login/")
out["hsts"] = page.get("Strict-Transport-Security", "")
out["forwarded"] = page.status_code
if page.status_code != 200:
    print(json.dumps(out))
    raise SystemExit(0)
out["csrf_secure"] = bool(page.cookies["csrftoken"]["secure"])
login = client.post("/admin/login/", {"username": "root", "password": "a-long-password-123",
                    "csrfmiddlewaretoken": page.cookies["csrftoken"].value}, HTTP_REFERER="https://testserver/admin/login/")
cookie = login.cookies["sessionid"]
out["login"] = login.status_code
out["session"] = [bool(cookie["secure"]), bool(cookie["httponly"]), cookie["samesite"]]
out["health"] = Client().get("/healthz").status_code
print(json.dumps(out))
"""


def _probe(tmp_path, **env):
    result = run_python(
        _PROBE,
        clean_env(
            DEBUG="false",
            SECRET_KEY=secrets.token_urlsafe(50),
            TOKEN_ENCRYPTION_KEY=secrets.token_hex(32),
            ALLOWED_HOSTS="testserver",
            DATABASE_URL=f"sqlite:///{tmp_path}/db.sqlite3",
            REDIS_ENABLE="false",
            **env,
        ),
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_behind_a_tls_proxy_hsts_and_secure_cookies(tmp_path):
    out = _probe(tmp_path, SECURE_PROXY_SSL_HEADER="true")
    assert out["plain"] == [301, "https://testserver/admin/login/"]  # plain HTTP is sent to HTTPS
    assert out["hsts"] == "max-age=31536000; includeSubDomains; preload"
    assert out["csrf_secure"] is True
    assert out["login"] == 302
    assert out["session"] == [True, True, "Lax"]
    assert out["health"] == 200  # probes over plain HTTP inside the network are not redirected


def test_without_the_proxy_setting_a_forwarded_https_request_is_still_redirected(tmp_path):
    """Django must not trust X-Forwarded-Proto unless told to: the redirect loop shows the setting is needed."""
    out = _probe(tmp_path)
    assert out["plain"][0] == 301
    assert out["forwarded"] == 301  # redirected to HTTPS although it came over HTTPS: a loop behind the proxy
    assert out["hsts"] == ""  # the request was not seen as HTTPS
