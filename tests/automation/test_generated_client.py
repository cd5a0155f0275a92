"""Generated clients: openapi-python-client builds a Python client from each OpenAPI document and drives
create tenant -> issue key -> set a flag override -> the service API answers the new value, then stage an
override in staging, review the diff and promote it to production, over real HTTP.

The generator is a dev requirement (requirements-dev.txt): without it this test fails, it never skips.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

from tests.automation.factories import make_operator, make_token
from tests.tenants.factories import make_flag

# The live server answers from another thread: its writes must be committed to be seen.
pytestmark = pytest.mark.django_db(transaction=True)

GENERATOR = Path(sys.executable).with_name("openapi-python-client")


def generate(document: dict, package: str, where: Path) -> None:
    """Write `package` generated from `document` under `where` (a sys.path entry)."""
    spec = where / f"{package}.json"
    spec.write_text(json.dumps(document))
    config = where / f"{package}.yaml"
    config.write_text(f"package_name_override: {package}\nproject_name_override: {package.replace('_', '-')}\n")
    env = {**os.environ, "PATH": f"{GENERATOR.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    argv = [str(GENERATOR), "generate", "--path", str(spec), "--meta", "none", "--fail-on-warning"]
    result = subprocess.run(
        [*argv, "--output-path", str(where / package), "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture
def generated(tmp_path):
    assert GENERATOR.exists(), (
        f"{GENERATOR} is missing: install the dev requirements (pip install -r requirements-dev.txt), "
        "which pin openapi-python-client"
    )
    documents = {
        "admin_client": Client().get("/api/v1/admin/openapi.json").json(),
        "service_client": Client().get("/api/v1/openapi.json").json(),
    }
    for package, document in documents.items():
        generate(document, package, tmp_path)
    sys.path.insert(0, str(tmp_path))
    try:
        yield
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m.split(".")[0] in documents]:
            del sys.modules[name]


def test_a_generated_client_provisions_a_tenant_end_to_end(generated, live_server, settings):
    settings.RESILIENCE_RATE_LIMIT_PER_MINUTE = 100_000
    make_flag("beta")
    _, staff_secret = make_token(make_operator("pipeline"))
    admin_client = importlib.import_module("admin_client")
    models = importlib.import_module("admin_client.models")
    api = {
        name: importlib.import_module(f"admin_client.api.{module}")
        for name, module in {
            "plan_create": "plans.plan_create",
            "tenant_create": "tenants.tenant_create",
            "tenant_get": "tenants.tenant_get",
            "tenant_update": "tenants.tenant_update",
            "apikey_issue": "api_keys.apikey_issue",
            "override_put": "overrides.override_put",
            "environment_create": "environments.environment_create",
            "environments_list": "environments.environments_list",
            "environment_diff": "environments.environment_diff",
            "environment_promote": "environments.environment_promote",
        }.items()
    }
    admin = admin_client.AuthenticatedClient(base_url=live_server.url, token=staff_secret)

    plan = api["plan_create"].sync_detailed(client=admin, body=models.PlanCreate(code="standard", name="Standard"))
    assert plan.status_code == 201, plan.content
    created = api["tenant_create"].sync_detailed(
        client=admin,
        body=models.TenantCreate(slug="acme", name="Acme", plan="standard"),
        idempotency_key="onboarding-acme-1",
    )
    assert created.status_code == 201 and created.parsed.slug == "acme", created.content
    etag = api["tenant_get"].sync_detailed("acme", client=admin).headers["ETag"]
    renamed = api["tenant_update"].sync_detailed(
        "acme", client=admin, body=models.TenantUpdate(name="Acme Inc"), if_match=etag
    )
    assert renamed.status_code == 200 and renamed.parsed.name == "Acme Inc"
    stale = api["tenant_update"].sync_detailed("acme", client=admin, body=models.TenantUpdate(name="x"), if_match=etag)
    assert stale.status_code == 412 and stale.parsed.error == "precondition_failed"

    issued = api["apikey_issue"].sync_detailed("acme", client=admin, body=models.ApiKeyIn(name="replica"))
    assert issued.status_code == 201 and issued.parsed.secret
    override = api["override_put"].sync_detailed("acme", "beta", client=admin, body=models.OverrideIn(enabled=True))
    assert override.status_code == 201 and override.parsed.enabled is True

    service_client = importlib.import_module("service_client")
    flag_evaluate = importlib.import_module("service_client.api.default.flag_evaluate")
    replica = service_client.AuthenticatedClient(base_url=live_server.url, token=issued.parsed.secret)
    answer = flag_evaluate.sync_detailed("beta", client=replica)
    assert answer.status_code == 200, answer.content
    assert answer.parsed.enabled is True and answer.parsed.reason == "admin_override"

    evaluate = importlib.import_module("service_client.api.default.evaluate")
    service_models = importlib.import_module("service_client.models")
    body = service_models.EvaluateIn.from_dict({"subject": "user-7", "context": {"platform": "ios"}, "keys": ["beta"]})
    evaluated = evaluate.sync_detailed(client=replica, body=body)
    assert evaluated.status_code == 200, evaluated.content
    assert evaluated.parsed.flags["beta"].enabled is True and evaluated.parsed.subject == "user-7"

    # Stage a change in staging, review the diff, promote it with the digest: production answers it.
    make_flag("new_editor")
    staging = api["environment_create"].sync_detailed(
        "acme", client=admin, body=models.EnvironmentCreate(key="staging", name="Staging")
    )
    assert staging.status_code == 201 and staging.parsed.key == "staging", staging.content
    listed = api["environments_list"].sync_detailed("acme", client=admin)
    assert [e.key for e in listed.parsed.items] == ["production", "staging"]
    staged = api["override_put"].sync_detailed(
        "acme", "new_editor", client=admin, body=models.OverrideIn(enabled=True), environment="staging"
    )
    assert staged.status_code == 201 and staged.parsed.environment == "staging", staged.content
    assert flag_evaluate.sync_detailed("new_editor", client=replica).parsed.enabled is False
    diff = api["environment_diff"].sync_detailed("acme", "production", client=admin, from_="staging")
    assert diff.status_code == 200, diff.content
    # The target becomes the source: production's override of beta, which staging lacks, goes.
    assert [(c.flag, c.layer, c.verb) for c in diff.parsed.changes] == [
        ("beta", "overrides", "remove"),
        ("new_editor", "overrides", "add"),
    ]
    promoted = api["environment_promote"].sync_detailed(
        "acme", "production", client=admin, body=models.PromoteIn(from_="staging", digest=diff.parsed.digest)
    )
    assert promoted.status_code == 200 and promoted.parsed.applied is True, promoted.content
    stale = api["environment_promote"].sync_detailed(
        "acme", "production", client=admin, body=models.PromoteIn(from_="staging", digest=diff.parsed.digest)
    )
    assert stale.status_code == 409 and stale.parsed.error == "environment_changed"
    production = flag_evaluate.sync_detailed("new_editor", client=replica)
    assert production.parsed.enabled is True and production.parsed.reason == "admin_override"
    assert flag_evaluate.sync_detailed("beta", client=replica).parsed.reason == "default"
